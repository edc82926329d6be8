#define _XOPEN_SOURCE 700
#include "tmpdir.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char test_dir[256];

int tmpdir_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(test_dir, sizeof test_dir, "%s/gf-unit-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof test_dir || !mkdtemp(test_dir)) {
        fprintf(stderr, "cannot make a scratch directory under %s\n", base);
        test_dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(p) != 0) {
        perror(p);
        return -1;
    }
    return 0;
}

int tmpdir_teardown(void **state)
{
    (void)state;
    if (!test_dir[0])
        return 0;
    int rc = nftw(test_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    test_dir[0] = '\0';
    return rc == 0 ? 0 : -1;
}

const char *test_path(const char *name)
{
    static char p[4][sizeof test_dir + 256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", test_dir, name);
    return p[i];
}

int tmpdir_entries(void)
{
    int n = 0;
    DIR *d = opendir(test_dir);
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}
