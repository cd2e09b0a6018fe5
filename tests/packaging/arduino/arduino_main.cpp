/*
 * arduino_main.cpp - what an Arduino core's main() does for a sketch, once: setup(), then
 * one loop(). The harness's startup code exits QEMU with main's return value.
 */
#include "Arduino.h"

TbSerial Serial;

void setup();
void loop();

int main()
{
    setup();
    loop();
    return 0;
}
