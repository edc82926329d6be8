/* Untrusted server data made safe: metadata.json parsing and file names
 * built from the "country" value, by the rules of gf/text.h. */
#include "gf/alloc.h"
#include "gf/names.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gf/error.h"
#include "gf/text.h"

#define GF_STR2(x) #x
#define GF_STR(x) GF_STR2(x)

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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
    if (gf_json_nul_escape(copy, len) != NULL) {
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
    if (!gf_utf8_valid(value->valuestring, n)) {
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
    uint32_t cp = 0;

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
    if (!gf_utf8_valid(country, len)) {
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
        k = gf_utf8_decode(country + i, len - i, &cp);
        /* Each code point is written whole or not at all, so the cut always
         * falls on a UTF-8 boundary. A replaced one needs a single byte. */
        if (cp == '/' || cp == '\\' || gf_text_is_control(cp) || gf_text_is_invisible(cp) ||
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
