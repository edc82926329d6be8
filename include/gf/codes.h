/* Country codes: what the CC arguments, -a, -e and the default select.
 *
 * A set is a bitmap over the 676 codes AA..ZZ, so adding twice is harmless
 * and listing yields the codes sorted and de-duplicated without allocating. */
#ifndef GF_CODES_H
#define GF_CODES_H

#include <stddef.h>

#define GF_CODES_MAX 676

struct gf_codeset {
    unsigned char present[GF_CODES_MAX];
};

/* A code as a NUL-terminated upper-case string, e.g. "BR". */
typedef char gf_cc[3];

/* Empties set. */
void gf_codeset_clear(struct gf_codeset *set);

/* Adds one command-line argument: a two-letter code or a single letter
 * (all 26 codes with that first letter), case-insensitive. Returns 0, or
 * GF_EUSAGE with a message for the user in err. */
int gf_codeset_add_arg(struct gf_codeset *set, const char *arg, char *err, size_t errsz);

/* The 194 codes of flags_data/country_codes.txt, compiled into the binary. */
void gf_codeset_add_all(struct gf_codeset *set);
/* Every code AA..ZZ. */
void gf_codeset_add_every(struct gf_codeset *set);
/* The 20 most populous countries. */
void gf_codeset_add_default(struct gf_codeset *set);

/* Writes the codes of set in sorted order into out (room for GF_CODES_MAX),
 * keeping at most limit of them (0 means no limit). Returns how many. */
size_t gf_codeset_list(const struct gf_codeset *set, size_t limit, gf_cc *out);

/* The compiled-in text of flags_data/country_codes.txt. */
extern const char gf_country_codes_txt[];

#endif
