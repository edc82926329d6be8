/* Untrusted text: the one module that owns every rule about bytes that come
 * from a server, a manifest or the command line. UTF-8 validation and
 * decoding, control and invisible characters, the \u0000 escape of JSON,
 * escaping for a terminal, and which header values may be sent back.
 * Pure functions, no allocation, no I/O. */
#ifndef GF_TEXT_H
#define GF_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Longest header value (ETag, Last-Modified) getflags keeps from an
 * answer and sends back in a request. */
#define GF_HEADER_VALUE_MAX 255

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), with its
 * code point in *cp, or 0 when the bytes there are not valid UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF, no
 * truncated sequence). */
size_t gf_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* 1 when all len bytes at s are valid UTF-8. */
int gf_utf8_valid(const char *s, size_t len);

/* The longest prefix of s (len bytes) that does not end inside a UTF-8
 * sequence, for cutting text without leaving half a character. */
size_t gf_utf8_cut(const char *s, size_t len);

/* 1 for a control character (Cc: C0, DEL, C1). */
int gf_text_is_control(uint32_t cp);

/* 1 for a code point that is invisible or changes how the text around it
 * is shown: Unicode 15.0's categories Cf (format: bidi overrides and
 * isolates, zero-width characters, U+FEFF, soft hyphen, tags...), Zl, Zp
 * and Zs (every space, U+0020 included). */
int gf_text_is_invisible(uint32_t cp);

/* Where the JSON text (len bytes, already known to be valid JSON or about
 * to be parsed) holds the escape \u0000 inside a string, or NULL: a JSON
 * decoder turns it into a NUL that silently cuts a C string. An escaped
 * backslash followed by "u0000" is text, not an escape. */
const char *gf_json_nul_escape(const char *text, size_t len);

/* 1 when the len bytes at v may go back to a server as a header value
 * (If-None-Match, If-Modified-Since) as they are: 1 to GF_HEADER_VALUE_MAX
 * bytes of visible ASCII, with spaces and tabs only between visible
 * characters (RFC 9110's field-value without obs-text). */
int gf_header_value_ok(const char *v, size_t len);

/* Copies s into out for printing on a terminal: control characters (C0,
 * DEL, C1), the invisible characters above but U+0020, and invalid UTF-8
 * become \xHH escapes, one per byte, and a backslash becomes "\\". Always
 * NUL-terminates out (outsz > 0), cutting if needed. Returns out. */
char *gf_escape_for_print(const char *s, size_t len, char *out, size_t outsz);

/* Copies the NUL-terminated s into out (at least strlen(s) + 1 bytes),
 * every byte of invalid UTF-8 or of a control character turned into '?'.
 * Returns out. */
char *gf_text_replace_bad(const char *s, char *out);

#endif
