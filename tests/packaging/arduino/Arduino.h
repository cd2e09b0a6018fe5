/*
 * Arduino.h - the part of the Arduino core API that tinybnn's example sketch uses (Serial's
 * begin, print, println and its bool test, with the signatures of the core's Print class),
 * written on the firmware harness's semihosting console, so that tests build the sketch
 * with an Arduino core's flags and run it under QEMU. It is not an Arduino core.
 */
#ifndef TB_ARDUINO_H
#define TB_ARDUINO_H

#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "semihost.h"
}

class TbSerial {
public:
    void begin(unsigned long baud) { (void)baud; }
    explicit operator bool() const { return true; }
    size_t print(const char *s)
    {
        tb_print(s);
        return 0;
    }
    size_t print(int v) { return print(static_cast<long>(v)); }
    size_t print(long v)
    {
        tb_print_int(static_cast<int32_t>(v));
        return 0;
    }
    size_t println(const char *s) { return print(s) + print("\n"); }
    size_t println(int v) { return print(v) + print("\n"); }
    size_t println(long v) { return print(v) + print("\n"); }
};

extern TbSerial Serial;

#endif
