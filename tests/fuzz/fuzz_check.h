/* Checks shared by the fuzz targets: what a saved file's name must always
 * be, verified independently of the code under test. */
#ifndef GF_FUZZ_CHECK_H
#define GF_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/names.h"

#define FUZZ_REQUIRE(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Strict UTF-8 (RFC 3629). Sets *control when a C0, DEL or C1 control
 * code point appears. Returns 1 when s[0..len) is valid. */
static int fuzz_utf8_valid(const unsigned char *s, size_t len, int *control)
{
    size_t i = 0;

    *control = 0;
    while (i < len) {
        unsigned long cp;
        size_t n, k;

        if (s[i] < 0x80) {
            if (s[i] < 0x20 || s[i] == 0x7F)
                *control = 1;
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            n = 2;
            cp = s[i] & 0x1Fu;
        } else if ((s[i] & 0xF0) == 0xE0) {
            n = 3;
            cp = s[i] & 0x0Fu;
        } else if ((s[i] & 0xF8) == 0xF0) {
            n = 4;
            cp = s[i] & 0x07u;
        } else {
            return 0;
        }
        if (len - i < n)
            return 0;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return 0;
        if (cp >= 0x80 && cp <= 0x9F)
            *control = 1;
        i += n;
    }
    return 1;
}

/* True when the UTF-8 text holds a code point a file name must not: the
 * Unicode 15.0 format characters, separators and spaces, listed here apart
 * from text.c so that a slip in one list shows. */
static int fuzz_has_invisible(const unsigned char *s, size_t len)
{
    static const unsigned long ranges[][2] = {
        {0x20, 0x20},       {0xA0, 0xA0},       {0xAD, 0xAD},       {0x600, 0x605},
        {0x61C, 0x61C},     {0x6DD, 0x6DD},     {0x70F, 0x70F},     {0x890, 0x891},
        {0x8E2, 0x8E2},     {0x1680, 0x1680},   {0x180E, 0x180E},   {0x2000, 0x200F},
        {0x2028, 0x202F},   {0x205F, 0x2064},   {0x2066, 0x206F},   {0x3000, 0x3000},
        {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
        {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
        {0xE0020, 0xE007F},
    };
    size_t i = 0, r;

    while (i < len) {
        unsigned long cp = s[i];
        size_t n = s[i] < 0x80 ? 1 : s[i] < 0xE0 ? 2 : s[i] < 0xF0 ? 3 : 4, k;

        if (n > 1)
            cp &= 0x3Fu >> (n - 1);
        for (k = 1; k < n && i + k < len; k++)
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        for (r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
            if (cp >= ranges[r][0] && cp <= ranges[r][1])
                return 1;
        i += n;
    }
    return 0;
}

/* A name from gf_name_from_country: safe as one path component. */
static void fuzz_check_name(const char *name, const char *cc)
{
    size_t len = strlen(name);
    int control;
    char suffix[8];

    FUZZ_REQUIRE(len > 0);
    FUZZ_REQUIRE(len <= GF_NAME_MAX);
    FUZZ_REQUIRE(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
    FUZZ_REQUIRE(name[0] != '.');
    FUZZ_REQUIRE(name[0] != '-');
    FUZZ_REQUIRE(strchr(name, '/') == NULL);
    FUZZ_REQUIRE(strchr(name, '\\') == NULL);
    FUZZ_REQUIRE(fuzz_utf8_valid((const unsigned char *)name, len, &control));
    FUZZ_REQUIRE(!control);
    FUZZ_REQUIRE(!fuzz_has_invisible((const unsigned char *)name, len));
    snprintf(suffix, sizeof suffix, "%s%s.gif", cc != NULL ? "_" : "", cc != NULL ? cc : "");
    FUZZ_REQUIRE(len > strlen(suffix));
    FUZZ_REQUIRE(strcmp(name + len - strlen(suffix), suffix) == 0);
}

#endif
