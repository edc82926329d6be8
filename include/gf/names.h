/* Untrusted server data made safe: metadata.json and the file name built
 * from its "country" value. Pure functions, no I/O. */
#ifndef GF_NAMES_H
#define GF_NAMES_H

#include <stddef.h>

/* Most bytes of a saved file's name, suffixes included. */
#define GF_NAME_MAX 200

/* Most bytes of a metadata.json body that getflags will read. */
#define GF_METADATA_MAX (64 * 1024)

/* Parses a metadata.json body of len bytes (it need not be NUL-terminated)
 * and copies its "country" value into a new malloc'd string owned by the
 * caller (*country). The body must be exactly one JSON object, with nothing
 * but white space after it, whose "country" is a non-empty string of valid
 * UTF-8 without NUL. Returns 0, or GF_EMETADATA with *why set to a static
 * reason such as "not a JSON object", "nested too deeply (more than 1000
 * levels)" (cJSON's CJSON_NESTING_LIMIT) or "\"country\" is missing", or
 * GF_ENOMEM. */
int gf_metadata_country(const char *body, size_t len, char **country, const char **why);

/* Turns a country name into the file name "<name>.gif", or
 * "<name>_<cc>.gif" when cc is not NULL (used when two codes collide).
 * '/', '\\', control characters (Cc: C0, DEL, C1), format characters
 * (Cf: bidi embeddings, overrides, isolates and marks, zero-width
 * characters, U+FEFF, soft hyphen, tag characters...), line and paragraph
 * separators (Zl, Zp) and every space (Zs, U+0020 included) become '_',
 * per a table of Unicode 15.0; leading dots become '_'; a name that starts
 * with '-' gets a '_' in front; the whole name is cut to at most
 * GF_NAME_MAX bytes on a UTF-8 boundary. Invalid UTF-8 (overlong forms,
 * surrogates, code points past U+10FFFF, truncated sequences) and an empty
 * name are refused. out must have room for GF_NAME_MAX + 1 bytes.
 * Returns 0, or GF_ENAME with *why set to a static reason. */
int gf_name_from_country(const char *country, size_t len, const char *cc, char *out, size_t outsz,
                         const char **why);

#endif
