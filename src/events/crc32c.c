/*
 * CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), as used by
 * iSCSI (RFC 3720) and ext4. Two implementations with identical results:
 *   - slice-by-8 tables (Kounavis & Berry, "A Systematic Approach to Building
 *     High Performance Software-Based CRC Generators", ISCC 2005), portable;
 *   - the SSE4.2 crc32 instruction, 8 bytes at a time, chosen at run time
 *     with __builtin_cpu_supports.
 */
#include <stdint.h>
#include <string.h>

#include "recd/events.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define RECD_CRC_HAVE_X86 1
#endif

static uint32_t crc_tab[8][256];
static int crc_hw;

/* Filled before main (a constructor rather than pthread_once, so the tables
 * are plainly read-only once threads exist). */
__attribute__((constructor)) static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xFF];
#ifdef RECD_CRC_HAVE_X86
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static uint32_t crc_sw_raw(uint32_t c, const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xFF];
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_tab[7][lo & 0xFF] ^ crc_tab[6][(lo >> 8) & 0xFF] ^ crc_tab[5][(lo >> 16) & 0xFF] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xFF] ^ crc_tab[2][(hi >> 8) & 0xFF] ^
            crc_tab[1][(hi >> 16) & 0xFF] ^ crc_tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xFF];
    return c;
}

#ifdef RECD_CRC_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t crc_hw_raw(uint32_t c, const uint8_t *p,
                                                             size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t recd_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    return ~crc_sw_raw(~crc, data, len);
}

uint32_t recd_crc32c(uint32_t crc, const void *data, size_t len)
{
#ifdef RECD_CRC_HAVE_X86
    if (crc_hw)
        return ~crc_hw_raw(~crc, data, len);
#endif
    return ~crc_sw_raw(~crc, data, len);
}

int recd_crc32c_hw_available(void)
{
    return crc_hw;
}
