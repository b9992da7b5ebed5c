#ifndef CRC32_H
#define CRC32_H
#include <stddef.h>
#include <stdint.h>
/* CRC-32/IEEE 802.3 (poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF), the
   same as Python's zlib.crc32: crc32_update(0, "123456789", 9) == 0xCBF43926.
   Chain calls by passing the previous result. */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len);
#endif
