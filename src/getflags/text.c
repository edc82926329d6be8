/* The rules about untrusted text, in one place: see gf/text.h. */
#include "gf/text.h"

#include <string.h>

size_t gf_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t c;
    size_t need;

    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        need = 2;
        c = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        need = 3;
        c = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        need = 4;
        c = p[0] & 0x07u;
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    if ((need == 3 && c < 0x800) || (need == 4 && c < 0x10000))
        return 0; /* overlong */
    if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        return 0; /* UTF-16 surrogate, or past Unicode */
    *cp = c;
    return need;
}

int gf_utf8_valid(const char *s, size_t len)
{
    uint32_t cp;
    for (size_t i = 0, k; i < len; i += k)
        if ((k = gf_utf8_decode(s + i, len - i, &cp)) == 0)
            return 0;
    return 1;
}

size_t gf_utf8_cut(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = len;

    while (start > 0 && len - start < 3 && (p[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return len;
    unsigned char lead = p[start - 1];
    /* ASCII or a stray continuation byte has nothing to complete. */
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
    return len - (start - 1) < need ? start - 1 : len;
}

int gf_text_is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

/* Code points that are invisible or that change how the text around them
 * is shown, so that a file name holding one can look like another name:
 * every code point of the general categories Cf (format), Zl (line
 * separator), Zp (paragraph separator) and Zs (space separator) in
 * Unicode 15.0, plus the unassigned rest of two blocks whose assigned code
 * points are all invisible (U+2065; U+E0000 and U+E0002..U+E001F of Tags).
 * Cc is gf_text_is_control(). Sorted, for a binary search. */
static const struct {
    uint32_t first, last;
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

int gf_text_is_invisible(uint32_t cp)
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

const char *gf_json_nul_escape(const char *text, size_t len)
{
    int in_string = 0;

    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
        } else if (text[i] == '"') {
            in_string = 0;
        } else if (text[i] == '\\' && i + 1 < len) {
            if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0)
                return text + i;
            i++; /* the escaped character, e.g. the '"' of \" */
        }
    }
    return NULL;
}

int gf_header_value_ok(const char *v, size_t len)
{
    if (len == 0 || len > GF_HEADER_VALUE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == ' ' || c == '\t') {
            if (i == 0 || i == len - 1)
                return 0;
        } else if (c < 0x21 || c > 0x7E) {
            return 0;
        }
    }
    return 1;
}

char *gf_escape_for_print(const char *s, size_t len, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, k, j;
    uint32_t cp = 0;

    if (outsz == 0)
        return out;
    if (s == NULL)
        len = 0;
    while (i < len) {
        k = gf_utf8_decode(s + i, len - i, &cp);
        if (k == 0 || gf_text_is_control(cp) || (cp != ' ' && gf_text_is_invisible(cp))) {
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

char *gf_text_replace_bad(const char *s, char *out)
{
    size_t len = strlen(s), o = 0;
    uint32_t cp = 0;

    for (size_t i = 0, k; i < len; i += k) {
        k = gf_utf8_decode(s + i, len - i, &cp);
        if (k == 0 || gf_text_is_control(cp)) {
            k = k ? k : 1;
            memset(out + o, '?', k);
        } else {
            memcpy(out + o, s + i, k);
        }
        o += k;
    }
    out[o] = '\0';
    return out;
}
