/* LD_PRELOAD shim for the no-DNS tests: getaddrinfo() for the host named
 * in GF_DNS_HANG_HOST never returns, as with a DNS server that drops every
 * query; other names resolve as usual. No namespace or mount is needed,
 * so the tests run in a chroot and without privileges. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    const char *hang = getenv("GF_DNS_HANG_HOST");
    if (node != NULL && hang != NULL && strcmp(node, hang) == 0) {
        /* The resolver thread waits for an answer that never comes. */
        for (;;)
            sleep(3600);
    }
    getaddrinfo_fn real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    return real(node, service, hints, res);
}
