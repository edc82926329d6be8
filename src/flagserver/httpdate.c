#include "flagserver/httpdate.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uv.h>

/* Day and month names must be English whatever the process locale is, so
 * strftime and strptime run under a C locale of their own. */
static locale_t c_locale;
static uv_once_t c_locale_once = UV_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t use_c_locale(void)
{
    uv_once(&c_locale_once, c_locale_init);
    return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void restore_locale(locale_t old)
{
    if (old)
        uselocale(old);
}

/* Formats t (UTC) with fmt into buf; returns the length, 0 on failure. */
static size_t format_utc(int64_t t, const char *fmt, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    locale_t old;
    size_t n;

    buf[0] = '\0';
    if (gmtime_r(&tt, &tm) == NULL)
        return 0;
    old = use_c_locale();
    /* fmt comes from this file only (literals and date_forms). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    n = strftime(buf, size, fmt, &tm);
#pragma GCC diagnostic pop
    restore_locale(old);
    return n;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

char *fs_httpdate_format(int64_t t, char *buf)
{
    format_utc(t, "%a, %d %b %Y %H:%M:%S GMT", buf, FS_HTTPDATE_LEN);
    return buf;
}

/* The three forms RFC 9110 section 5.6.7 obliges a recipient to accept:
 * IMF-fixdate, the obsolete RFC 850 form and asctime's. */
static const char *const date_forms[] = {
    "%a, %d %b %Y %H:%M:%S GMT",
    "%A, %d-%b-%y %H:%M:%S GMT",
    "%a %b %e %H:%M:%S %Y",
};

int fs_httpdate_parse(const char *s, int64_t *t)
{
    char in[64], again[64];
    size_t n, i;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(in))
        return -1;
    memcpy(in, s, n);
    in[n] = '\0';
    for (i = 0; i < sizeof(date_forms) / sizeof(date_forms[0]); i++) {
        struct tm tm;
        locale_t old = use_c_locale();
        const char *end;
        time_t when;

        memset(&tm, 0, sizeof(tm));
        end = strptime(in, date_forms[i], &tm);
        restore_locale(old);
        if (end == NULL || *end != '\0')
            continue;
        when = timegm(&tm);
        /* strptime is lenient (single-digit days, 31 February, a weekday that
         * does not match the date); printing the result back in the same
         * form and comparing keeps only the exact spelling of a real date. */
        if (format_utc((int64_t)when, date_forms[i], again, sizeof(again)) == 0 ||
            strcmp(again, in) != 0)
            continue;
        *t = (int64_t)when;
        return 0;
    }
    return -1;
}

char *fs_logtime_format(int64_t ms, char *buf)
{
    int64_t secs = floor_div(ms, 1000);
    size_t n = format_utc(secs, "%Y-%m-%dT%H:%M:%S", buf, FS_LOGTIME_LEN);

    snprintf(buf + n, FS_LOGTIME_LEN - n, ".%03uZ", (unsigned)(ms - secs * 1000) % 1000u);
    return buf;
}
