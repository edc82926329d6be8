/* The status names of gf/model.h: one table, read both ways. */
#include "gf/model.h"

#include <string.h>

static const char *const names[] = {
    [GF_PENDING] = "pending",     [GF_OK] = "ok",
    [GF_NOT_FOUND] = "not_found", [GF_ERROR] = "error",
    [GF_UNCHANGED] = "unchanged",
};

const char *gf_status_name(enum gf_status st)
{
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : names[GF_PENDING];
}

int gf_status_parse(const char *name, enum gf_status *st)
{
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *st = (enum gf_status)i;
            return 0;
        }
    }
    return -1;
}

int gf_status_has_file(enum gf_status st)
{
    return st == GF_OK || st == GF_UNCHANGED;
}
