/* Untrusted server data made safe: metadata.json parsing, file names built
 * from the "country" value, and escaping for terminal output. */
#include "gf/alloc.h"
#include "gf/names.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gf/error.h"

#define GF_STR2(x) #x
#define GF_STR(x) GF_STR2(x)

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), storing
 * its code point in *cp, or 0 when the bytes there are not valid UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned long c;
    size_t need, i;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        need = 2;
        c = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        need = 3;
        c = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        need = 4;
        c = s[0] & 0x07u;
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if ((need == 3 && c < 0x800) || (need == 4 && c < 0x10000))
        return 0; /* overlong */
    if (c >= 0xD800 && c <= 0xDFFF)
        return 0; /* UTF-16 surrogate */
    if (c > 0x10FFFF)
        return 0;
    *cp = c;
    return need;
}

static int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;
    unsigned long cp = 0;

    while (i < len) {
        k = utf8_decode(p + i, len - i, &cp);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

static int is_control(unsigned long cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

/* Code points that are invisible or that change how the text around them
 * is shown, so that a file name holding one can look like another name:
 * every code point of the general categories Cf (format), Zl (line
 * separator), Zp (paragraph separator) and Zs (space separator) in
 * Unicode 15.0, plus the unassigned rest of two blocks whose assigned code
 * points are all invisible (U+2065; U+E0000 and U+E0002..U+E001F of Tags).
 * Cc is is_control() above. Sorted, for a binary search. */
static const struct {
    unsigned long first, last;
} invisible[] = {
    {0x0020, 0x0020},   /* Zs  SPACE */
    {0x00A0, 0x00A0},   /* Zs  NO-BREAK SPACE */
    {0x00AD, 0x00AD},   /* Cf  SOFT HYPHEN */
    {0x0600, 0x0605},   /* Cf  ARABIC NUMBER SIGN..ARABIC NUMBER MARK ABOVE */
    {0x061C, 0x061C},   /* Cf  ARABIC LETTER MARK (bidi) */
    {0x06DD, 0x06DD},   /* Cf  ARABIC END OF AYAH */
    {0x070F, 0x070F},   /* Cf  SYRIAC ABBREVIATION MARK */
    {0x0890, 0x0891},   /* Cf  ARABIC POUND/PIASTRE MARK ABOVE */
    {0x08E2, 0x08E2},   /* Cf  ARABIC DISPUTED END OF AYAH */
    {0x1680, 0x1680},   /* Zs  OGHAM SPACE MARK */
    {0x180E, 0x180E},   /* Cf  MONGOLIAN VOWEL SEPARATOR */
    {0x2000, 0x200A},   /* Zs  EN QUAD..HAIR SPACE */
    {0x200B, 0x200F},   /* Cf  ZERO WIDTH SPACE, ZWNJ, ZWJ, LRM, RLM */
    {0x2028, 0x2028},   /* Zl  LINE SEPARATOR */
    {0x2029, 0x2029},   /* Zp  PARAGRAPH SEPARATOR */
    {0x202A, 0x202E},   /* Cf  LRE, RLE, PDF, LRO, RLO (bidi embeddings, overrides) */
    {0x202F, 0x202F},   /* Zs  NARROW NO-BREAK SPACE */
    {0x205F, 0x205F},   /* Zs  MEDIUM MATHEMATICAL SPACE */
    {0x2060, 0x2064},   /* Cf  WORD JOINER..INVISIBLE PLUS */
    {0x2065, 0x2065},   /* unassigned, in the same invisible run */
    {0x2066, 0x206F},   /* Cf  LRI, RLI, FSI, PDI (bidi isolates)..NOMINAL DIGIT SHAPES */
    {0x3000, 0x3000},   /* Zs  IDEOGRAPHIC SPACE */
    {0xFEFF, 0xFEFF},   /* Cf  ZERO WIDTH NO-BREAK SPACE (byte order mark) */
    {0xFFF9, 0xFFFB},   /* Cf  INTERLINEAR ANNOTATION ANCHOR..TERMINATOR */
    {0x110BD, 0x110BD}, /* Cf  KAITHI NUMBER SIGN */
    {0x110CD, 0x110CD}, /* Cf  KAITHI NUMBER SIGN ABOVE */
    {0x13430, 0x1343F}, /* Cf  EGYPTIAN HIEROGLYPH format controls */
    {0x1BCA0, 0x1BCA3}, /* Cf  SHORTHAND FORMAT LETTER OVERLAP..STEP */
    {0x1D173, 0x1D17A}, /* Cf  MUSICAL SYMBOL BEGIN BEAM..END PHRASE */
    {0xE0000, 0xE007F}, /* Cf  LANGUAGE TAG, TAG SPACE..CANCEL TAG (whole Tags block) */
};

/* True for a code point of invisible[] (space included). */
static int is_invisible(unsigned long cp)
{
    size_t lo = 0, hi = sizeof invisible / sizeof invisible[0];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cp < invisible[mid].first)
            hi = mid;
        else if (cp > invisible[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* True when some JSON string in text holds the escape \u0000. cJSON would
 * decode it into a NUL that silently truncates the C string, so the
 * document is refused instead. text is NUL-terminated and already known to
 * be valid JSON, which keeps this scan simple. */
static int has_escaped_nul(const char *text)
{
    int in_string = 0;
    const char *p;

    for (p = text; *p; p++) {
        if (!in_string) {
            if (*p == '"')
                in_string = 1;
        } else if (*p == '"') {
            in_string = 0;
        } else if (*p == '\\') {
            if (p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '0' && p[5] == '0')
                return 1;
            if (p[1] != '\0')
                p++; /* skip the escaped character, e.g. the '"' of \" */
        }
    }
    return 0;
}

/* True when the JSON text up to at (where cJSON stopped) is an opening
 * bracket nested deeper than cJSON's limit: cJSON refuses such a document
 * before it has seen any syntax error, and "not valid JSON" would be
 * wrong. Brackets inside strings do not count. */
static int too_deep_at(const char *text, const char *at)
{
    int in_string = 0;
    long depth = 0;
    const char *p;

    for (p = text; p < at && *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if (*p == ']' || *p == '}') {
            depth--;
        }
    }
    return !in_string && (*at == '[' || *at == '{') && depth >= CJSON_NESTING_LIMIT;
}

int gf_metadata_country(const char *body, size_t len, char **country, const char **why)
{
    const char *end = NULL, *p;
    const cJSON *value;
    cJSON *root;
    char *copy;
    size_t n;

    *country = NULL;
    if (len > GF_METADATA_MAX) {
        *why = "larger than 64 KiB";
        return GF_EMETADATA;
    }
    if (body == NULL || len == 0) {
        *why = "not valid JSON";
        return GF_EMETADATA;
    }
    if (memchr(body, '\0', len) != NULL) {
        *why = "contains a NUL byte";
        return GF_EMETADATA;
    }
    /* cJSON skips any byte up to 0x20 as white space; JSON allows four. */
    for (p = body; p < body + len && is_json_space(*p); p++)
        ;
    if (p < body + len && (unsigned char)*p < 0x20) {
        *why = "not valid JSON";
        return GF_EMETADATA;
    }

    /* A terminated copy bounds every read cJSON makes to our own buffer. */
    copy = gf_malloc(len + 1);
    if (copy == NULL)
        return GF_ENOMEM;
    memcpy(copy, body, len);
    copy[len] = '\0';

    root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (root == NULL) {
        /* On failure cJSON sets end to where it stopped. */
        *why = end != NULL && end >= copy && end < copy + len && too_deep_at(copy, end)
                   ? "nested too deeply (more than " GF_STR(CJSON_NESTING_LIMIT) " levels)"
                   : "not valid JSON";
        gf_free(copy);
        return GF_EMETADATA;
    }
    for (p = end; p != NULL && p < copy + len && is_json_space(*p); p++)
        ;
    if (p == NULL || p != copy + len) {
        *why = "trailing data after the JSON object";
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        *why = "not a JSON object";
        goto fail;
    }
    if (has_escaped_nul(copy)) {
        *why = "contains an escaped NUL character";
        goto fail;
    }
    value = cJSON_GetObjectItemCaseSensitive(root, "country");
    if (value == NULL) {
        *why = "\"country\" is missing";
        goto fail;
    }
    if (!cJSON_IsString(value) || value->valuestring == NULL) {
        *why = "\"country\" is not a string";
        goto fail;
    }
    n = strlen(value->valuestring);
    if (n == 0) {
        *why = "\"country\" is empty";
        goto fail;
    }
    if (!utf8_valid(value->valuestring, n)) {
        *why = "\"country\" is not valid UTF-8";
        goto fail;
    }
    *country = gf_malloc(n + 1);
    if (*country == NULL) {
        cJSON_Delete(root);
        gf_free(copy);
        return GF_ENOMEM;
    }
    memcpy(*country, value->valuestring, n + 1);
    cJSON_Delete(root);
    gf_free(copy);
    return 0;

fail:
    cJSON_Delete(root);
    gf_free(copy);
    return GF_EMETADATA;
}

static int is_cc(const char *cc)
{
    int i;

    for (i = 0; i < 2; i++) {
        char c = cc[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return 0;
    }
    return cc[2] == '\0';
}

int gf_name_from_country(const char *country, size_t len, const char *cc, char *out, size_t outsz,
                         const char **why)
{
    const unsigned char *s = (const unsigned char *)country;
    size_t max, suffix_len, budget, i = 0, o = 0, k;
    int leading = 1;
    unsigned long cp = 0;

    if (out != NULL && outsz > 0)
        out[0] = '\0';
    if (out == NULL || outsz == 0) {
        *why = "no room for the file name";
        return GF_ENAME;
    }
    if (country == NULL || len == 0) {
        *why = "country name is empty";
        return GF_ENAME;
    }
    if (cc != NULL && !is_cc(cc)) {
        *why = "invalid country code";
        return GF_ENAME;
    }
    if (!utf8_valid(country, len)) {
        *why = "country name is not valid UTF-8";
        return GF_ENAME;
    }

    max = outsz - 1 < GF_NAME_MAX ? outsz - 1 : GF_NAME_MAX;
    suffix_len = cc != NULL ? 7 : 4; /* "_CC.gif" or ".gif" */
    if (max < suffix_len + 1) {
        *why = "no room for the file name";
        return GF_ENAME;
    }
    budget = max - suffix_len;

    /* A name that starts with '-' would read as an option to a command
     * given "*.gif" (rm, mv), so it gets a '_' in front. */
    if (s[0] == '-')
        out[o++] = '_';
    while (i < len) {
        k = utf8_decode(s + i, len - i, &cp);
        /* Each code point is written whole or not at all, so the cut always
         * falls on a UTF-8 boundary. A replaced one needs a single byte. */
        if (cp == '/' || cp == '\\' || is_control(cp) || is_invisible(cp) ||
            (leading && cp == '.')) {
            if (o + 1 > budget)
                break;
            out[o++] = '_';
        } else {
            if (o + k > budget)
                break;
            memcpy(out + o, s + i, k);
            o += k;
        }
        if (cp != '.')
            leading = 0;
        i += k;
    }
    if (o == 0) {
        /* Only reachable when nothing fits, which budget >= 1 rules out,
         * but an empty base must never become ".gif". */
        *why = "country name is empty";
        return GF_ENAME;
    }
    if (cc != NULL) {
        out[o++] = '_';
        out[o++] = cc[0];
        out[o++] = cc[1];
    }
    memcpy(out + o, ".gif", 5);
    return 0;
}

char *gf_escape_for_print(const char *s, size_t len, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, k, j;
    unsigned long cp = 0;

    if (outsz == 0)
        return out;
    if (s == NULL)
        len = 0;
    while (i < len) {
        k = utf8_decode(p + i, len - i, &cp);
        if (k == 0 || is_control(cp) || (cp != ' ' && is_invisible(cp))) {
            /* Every byte of a bad, control or invisible sequence is shown as
             * \xHH, so that a bidi override cannot reorder the line. */
            size_t nbytes = k == 0 ? 1 : k;
            if (o + 4 * nbytes > outsz - 1)
                break;
            for (j = 0; j < nbytes; j++) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[p[i + j] >> 4];
                out[o++] = hex[p[i + j] & 0x0F];
            }
            i += nbytes;
        } else if (cp == '\\') {
            if (o + 2 > outsz - 1)
                break;
            out[o++] = '\\';
            out[o++] = '\\';
            i++;
        } else {
            if (o + k > outsz - 1)
                break;
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        }
    }
    out[o] = '\0';
    return out;
}
