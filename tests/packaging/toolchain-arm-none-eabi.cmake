# A CMake toolchain file for bare-metal Cortex-M with Debian's gcc-arm-none-eabi, as a
# firmware project would have one. The core's flags come in as -DTB_CPU_FLAGS="..." (the
# cflags of its record in tinybnn/compiler/targets.py).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
# No C library to link a test program with: CMake's compiler checks build a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TB_CPU_FLAGS TB_HARNESS)
set(CMAKE_C_FLAGS_INIT "${TB_CPU_FLAGS} -mthumb")
# The compiler comes without newlib here (Debian installs it only as a recommendation): the
# harness's <string.h> stands in for the C library's headers, for every target.
set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES ${TB_HARNESS})
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostdlib")
# After every library on the link line: the helpers (division on ARMv6-M) they may call.
set(CMAKE_C_STANDARD_LIBRARIES "-lgcc")
