#include "flagserver/httpdate.h"

#include <stdio.h>
#include <string.h>

static const char day_names[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). Shifting
 * the year to start in March puts the leap day last. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

char *fs_httpdate_format(int64_t t, char *buf)
{
    int64_t days = floor_div(t, 86400), secs = t - days * 86400, y;
    int m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(buf, FS_HTTPDATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             day_names[((days % 7) + 7) % 7], d, month_names[m - 1], (int)y, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
    return buf;
}

static int digits(const char *s, int n)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int fs_httpdate_parse(const char *s, int64_t *t)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int i, wday = -1, mon = -1, day, year, hh, mm, ss;
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    for (i = 0; i < 7; i++)
        if (memcmp(s, day_names[i], 3) == 0)
            wday = i;
    for (i = 0; i < 12; i++)
        if (memcmp(s + 8, month_names[i], 3) == 0)
            mon = i;
    day = digits(s + 5, 2);
    year = digits(s + 12, 4);
    hh = digits(s + 17, 2);
    mm = digits(s + 20, 2);
    ss = digits(s + 23, 2);
    if (wday < 0 || mon < 0 || day < 1 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || day > mdays[mon])
        return -1;
    *t = days_from_civil(year, mon + 1, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

char *fs_logtime_format(int64_t ms, char *buf)
{
    int64_t secs = floor_div(ms, 1000), days = floor_div(secs, 86400), y;
    int64_t sod = secs - days * 86400;
    int m, d;

    civil_from_days(days, &y, &m, &d);
    /* Every field is already in range; the unsigned remainders tell the
     * compiler so, which bounds the output to FS_LOGTIME_LEN. */
    snprintf(buf, FS_LOGTIME_LEN, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(y % 10000),
             (unsigned)m % 100u, (unsigned)d % 100u, (unsigned)(sod / 3600) % 100u,
             (unsigned)(sod / 60 % 60), (unsigned)(sod % 60), (unsigned)(ms - secs * 1000) % 1000u);
    return buf;
}
