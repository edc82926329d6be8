/* Country code sets: a bitmap over AA..ZZ, filled from command-line
 * arguments, the compiled-in list, every code, or the default 20. */
#include "gf/codes.h"

#include <stdio.h>
#include <string.h>

#include "gf/error.h"
#include "gf/text.h"

static int upper(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 'A';
    if (c >= 'A' && c <= 'Z')
        return c;
    return -1; /* not an ASCII letter: toupper() would follow the locale */
}

static size_t index_of(int a, int b)
{
    return (size_t)(a - 'A') * 26 + (size_t)(b - 'A');
}

void gf_codeset_clear(struct gf_codeset *set)
{
    memset(set->present, 0, sizeof set->present);
}

int gf_codeset_add_arg(struct gf_codeset *set, const char *arg, char *err, size_t errsz)
{
    char shown[128];
    size_t len = arg != NULL ? strlen(arg) : 0;
    int a = len >= 1 ? upper((unsigned char)arg[0]) : -1;
    int b = len == 2 ? upper((unsigned char)arg[1]) : -1;
    int i;

    if (len == 1 && a >= 0) {
        for (i = 'A'; i <= 'Z'; i++)
            set->present[index_of(a, i)] = 1;
        return 0;
    }
    if (len == 2 && a >= 0 && b >= 0) {
        set->present[index_of(a, b)] = 1;
        return 0;
    }
    if (err != NULL && errsz > 0) {
        /* The escaped argument gets only the room left in err, so that
         * snprintf never cuts through a UTF-8 character or an escape. */
        static const char prefix[] = "invalid country code or letter: '";
        size_t room = errsz > sizeof prefix ? errsz - sizeof prefix : 1;
        gf_escape_for_print(arg, len, shown, room < sizeof shown ? room : sizeof shown);
        gf_errorf(err, errsz, "%s%s'", prefix, shown);
    }
    return GF_EUSAGE;
}

void gf_codeset_add_all(struct gf_codeset *set)
{
    const char *p = gf_country_codes_txt;

    /* The text is trusted (it is built from our own data file), but only
     * well-formed two-letter words are taken, so a stray token cannot
     * set a wrong bit. */
    while (*p) {
        const char *w;
        int a, b;

        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        if (p - w != 2)
            continue;
        a = upper((unsigned char)w[0]);
        b = upper((unsigned char)w[1]);
        if (a >= 0 && b >= 0)
            set->present[index_of(a, b)] = 1;
    }
}

void gf_codeset_add_every(struct gf_codeset *set)
{
    memset(set->present, 1, sizeof set->present);
}

void gf_codeset_add_default(struct gf_codeset *set)
{
    static const char top20[] = "CNINUSIDBRPKNGBDRUJPMXPHVNETEGDEIRTRCDFR";
    size_t i;

    for (i = 0; i + 1 < sizeof top20; i += 2)
        set->present[index_of(top20[i], top20[i + 1])] = 1;
}

size_t gf_codeset_list(const struct gf_codeset *set, size_t limit, gf_cc *out)
{
    size_t i, n = 0;

    for (i = 0; i < GF_CODES_MAX; i++) {
        if (!set->present[i])
            continue;
        if (limit != 0 && n == limit)
            break;
        out[n][0] = (char)('A' + i / 26);
        out[n][1] = (char)('A' + i % 26);
        out[n][2] = '\0';
        n++;
    }
    return n;
}
