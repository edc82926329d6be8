/* DIR/.getflags/manifest.json: round trips, atomic replacement, hostile
 * files read back, paths refused on writing, and UTC times whatever TZ. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "gf/error.h"
#include "gf/afile.h"
#include "gf/manifest.h"
#include "gf/names.h"
#include "gf/text.h"

#include "tmpdir.h"

static void write_file(const char *name, const char *text, size_t len)
{
    FILE *f = fopen(test_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Writes text as the manifest of the test directory. */
static void plant(const char *text)
{
    mkdir(test_path(".getflags"), 0777);
    write_file(".getflags/manifest.json", text, strlen(text));
}

static char *slurp(const char *name, size_t *len)
{
    FILE *f = fopen(test_path(name), "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Names in d/.getflags other than "." and "..", joined by spaces in sorted
 * order. */
static const char *listing_of(const char *d_path)
{
    static char out[1024];
    char names[16][256], p[600];
    int n = 0;
    snprintf(p, sizeof p, "%s/.getflags", d_path);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) && n < 16)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, i ? " " : "");
        strcat(out, names[i]);
    }
    return out;
}

static const char *state_listing(void)
{
    return listing_of(test_dir);
}

static struct gf_manifest_entry entry(const char *cc, enum gf_status status, const char *file)
{
    struct gf_manifest_entry e = {0};
    snprintf(e.cc, sizeof e.cc, "%s", cc);
    e.status = status;
    e.file = (char *)file;
    return e;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_entries_equal(const struct gf_manifest_entry *a,
                                 const struct gf_manifest_entry *b)
{
    assert_string_equal(a->cc, b->cc);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->http_status, b->http_status);
    assert_str_or_null(a->file, b->file);
    assert_true(a->bytes == b->bytes);
    assert_string_equal(a->sha256, b->sha256);
    assert_str_or_null(a->meta.etag, b->meta.etag);
    assert_str_or_null(a->meta.last_modified, b->meta.last_modified);
    assert_str_or_null(a->image.etag, b->image.etag);
    assert_str_or_null(a->image.last_modified, b->image.last_modified);
    assert_str_or_null(a->error, b->error);
}

/* A manifest with one entry of every status, added out of order. */
static void build_sample(struct gf_manifest *m)
{
    struct gf_manifest_entry e;

    memset(m, 0, sizeof *m);
    assert_int_equal(gf_manifest_set_run(m, "2026-11-21T20:41:03Z", "http://127.0.0.1:8001/flags"),
                     0);

    e = entry("ZW", GF_OK, "Zimbabwe.gif");
    e.http_status = 200;
    e.bytes = 1234;
    strcpy(e.sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    e.meta.etag = "\"meta-zw\"";
    e.meta.last_modified = "Sat, 21 Nov 2026 20:41:03 GMT";
    e.image.etag = "W/\"img-zw\"";
    e.image.last_modified = "Fri, 20 Nov 2026 10:00:00 GMT";
    assert_int_equal(gf_manifest_set(m, &e), 0);

    e = entry("CI", GF_OK, "C\xc3\xb4te_d'Ivoire.gif");
    e.http_status = 200;
    e.bytes = (1ULL << 53); /* the largest size a JSON number holds */
    strcpy(e.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(gf_manifest_set(m, &e), 0);

    e = entry("XX", GF_ERROR, NULL);
    e.http_status = 418;
    e.error = "HTTP error 418 - I'm a \"teapot\" \xe2\x98\x95";
    assert_int_equal(gf_manifest_set(m, &e), 0);

    e = entry("ZZ", GF_NOT_FOUND, NULL);
    e.http_status = 404;
    assert_int_equal(gf_manifest_set(m, &e), 0);

    e = entry("FR", GF_UNCHANGED, "France.gif");
    e.http_status = 304;
    e.bytes = 6127;
    strcpy(e.sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    e.image.etag = "\"fr\"";
    assert_int_equal(gf_manifest_set(m, &e), 0);
}

static void test_manifest_missing_is_empty(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[512] = "junk";

    /* No DIR at all, DIR without .getflags, .getflags without the file. */
    assert_int_equal(gf_manifest_load(test_path("none"), &m, err, sizeof err), 0);
    assert_int_equal(m.n, 0);
    assert_null(m.entries);
    assert_null(m.run_time);
    assert_string_equal(err, "");
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(m.n, 0);
    assert_int_equal(access(test_path(".getflags"), F_OK), -1); /* nothing created */
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(m.n, 0);
    assert_int_equal(m.skipped, 0);
    gf_manifest_free(&m);
}

static void test_manifest_round_trip(void **state)
{
    (void)state;
    struct gf_manifest m, back;
    char err[512] = "";

    build_sample(&m);
    /* Kept sorted by code whatever the order of gf_manifest_set(). */
    assert_int_equal(m.n, 5);
    const char *order[] = {"CI", "FR", "XX", "ZW", "ZZ"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(m.entries[i].cc, order[i]);

    assert_int_equal(gf_manifest_save(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(gf_manifest_load(test_dir, &back, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(back.skipped, 0);
    assert_int_equal(back.n, m.n);
    assert_string_equal(back.run_time, m.run_time);
    assert_string_equal(back.base_url, m.base_url);
    for (size_t i = 0; i < m.n; i++)
        assert_entries_equal(&back.entries[i], &m.entries[i]);

    /* Saving what was loaded writes the same bytes: a stable format. */
    size_t len;
    char first[1 << 16];
    char *text = slurp(".getflags/manifest.json", &len);
    memcpy(first, text, len + 1);
    assert_int_equal(gf_manifest_save(test_dir, &back, err, sizeof err), 0);
    text = slurp(".getflags/manifest.json", &len);
    assert_string_equal(text, first);

    /* The documented layout: keys in order, every key present, UTF-8 as
     * is, a newline at the end. */
    const char *version = strstr(text, "\"version\":");
    const char *run_time = strstr(text, "\"run_time\":");
    const char *entries = strstr(text, "\"entries\":");
    assert_true(version && run_time && entries && version < run_time && run_time < entries);
    assert_non_null(strstr(text, "\"version\":2,"));
    assert_non_null(strstr(text, "\"file\":\"C\xc3\xb4te_d'Ivoire.gif\""));
    assert_non_null(strstr(text, "\"bytes\":9007199254740992"));
    /* State only: the timings are --json's. */
    assert_null(strstr(text, "timings"));
    /* One entry per line. */
    assert_non_null(strstr(text, "\n{\"cc\":\"CI\",\"status\":"));
    assert_true(text[len - 1] == '\n' && text[len - 2] == '}');
    const char *ci = strstr(text, "\"CI\""), *fr = strstr(text, "\"FR\"");
    assert_true(ci && fr && ci < fr);

    gf_manifest_free(&m);
    gf_manifest_free(&back);
}

/* What cJSON prints for s, or null, as the value of key in o. */
static void cj_add(cJSON *o, const char *key, const char *s)
{
    assert_non_null(
        cJSON_AddItemToObject(o, key, s ? cJSON_CreateString(s) : cJSON_CreateNull()) ? o : NULL);
}

static cJSON *cj_request(const struct gf_manifest_request *r)
{
    cJSON *o = cJSON_CreateObject();
    cj_add(o, "etag", r->etag);
    cj_add(o, "last_modified", r->last_modified);
    return o;
}

/* The document as cJSON prints it, head and then an entry per line: the
 * reference the manifest's own formatter must match byte for byte. */
static char *cjson_text(const struct gf_manifest *m)
{
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    cJSON *head = cJSON_CreateObject();
    cJSON_AddItemToObject(head, "version", cJSON_CreateNumber(GF_MANIFEST_VERSION));
    cj_add(head, "run_time", m->run_time);
    cj_add(head, "base_url", m->base_url);
    char *t = cJSON_PrintUnformatted(head);
    len += (size_t)snprintf(out + len, cap - len, "%.*s,\n\"entries\": [", (int)strlen(t) - 1, t);
    cJSON_free(t);
    cJSON_Delete(head);
    for (size_t i = 0; i < m->n; i++) {
        const struct gf_manifest_entry *e = &m->entries[i];
        cJSON *o = cJSON_CreateObject();
        char bytes[24];
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)e->bytes);
        cj_add(o, "cc", e->cc);
        cj_add(o, "status", gf_status_name(e->status));
        cJSON_AddItemToObject(o, "http_status", cJSON_CreateNumber(e->http_status));
        cj_add(o, "file", e->file);
        cJSON_AddItemToObject(o, "bytes", cJSON_CreateRaw(bytes));
        cj_add(o, "sha256", e->sha256[0] ? e->sha256 : NULL);
        cJSON_AddItemToObject(o, "meta", cj_request(&e->meta));
        cJSON_AddItemToObject(o, "image", cj_request(&e->image));
        cj_add(o, "error", e->error);
        t = cJSON_PrintUnformatted(o);
        assert_true(len + strlen(t) + 8 < cap);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ",\n" : "\n", t);
        cJSON_free(t);
        cJSON_Delete(o);
    }
    snprintf(out + len, cap - len, "\n]}\n");
    return out;
}

/* The manifest's formatter writes what cJSON would: the same escapes for
 * every byte a string may hold (quotes, backslashes, each control
 * character, UTF-8, DEL), whole numbers in full, null for what is absent,
 * also across the 16 KiB buffer's edges. Entries are built directly, as
 * the journal of gf_state_begin() is, bypassing gf_manifest_set()'s
 * rules. */
static void test_manifest_text_is_cjson_text(void **state)
{
    (void)state;
    static char all[256], quotes[40000], huge[20000];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    for (size_t i = 0; i + 1 < sizeof quotes; i++)
        quotes[i] = "\"\\\n\x01"[i % 4]; /* each one escaped: 6 times the room */
    memset(huge, 'x', sizeof huge - 1);
    static struct gf_manifest_entry e[40];
    for (size_t i = 0; i < 40; i++) {
        e[i] = entry("AA", (enum gf_status)(i % 5 == 4 ? GF_UNCHANGED : i % 4), NULL);
        e[i].cc[0] = (char)('A' + i / 26);
        e[i].cc[1] = (char)('A' + i % 26);
        e[i].http_status = i == 3 ? -7 : (int)(i * 25);
        e[i].bytes = i == 5 ? (1ULL << 53) : i * 1000003;
        if (i % 3 == 0)
            strcpy(e[i].sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
        e[i].file = i % 2 ? "C\xc3\xb4te_d'Ivoire.gif" : NULL;
        e[i].error = i == 7 ? all : i == 9 ? quotes : i == 11 ? huge : i % 2 ? NULL : "";
        e[i].meta.etag = i % 3 ? "W/\"x\\y\"" : NULL;
        e[i].image.last_modified = i % 4 ? "Sat, 21 Nov 2026 20:41:03 GMT" : NULL;
    }
    struct gf_manifest m = {.run_time = "2026-11-21T20:41:03Z",
                            .base_url = "http://h/\"a\\b\"\t\xe2\x98\x95",
                            .entries = e,
                            .n = 40,
                            .cap = 40};
    char err[512];
    for (size_t n = 0; n <= 40; n += 40) {
        m.n = n; /* no entry at all, then all of them */
        if (n == 0)
            m.base_url = NULL;
        assert_int_equal(gf_manifest_save(test_dir, &m, err, sizeof err), 0);
        FILE *f = fopen(test_path(".getflags/manifest.json"), "rb");
        assert_non_null(f);
        static char got[1 << 20];
        size_t len = fread(got, 1, sizeof got - 1, f);
        fclose(f);
        got[len] = '\0';
        char *want = cjson_text(&m);
        assert_true(len > (n ? 100000 : 40)); /* several buffers' worth */
        /* Where they part, in a form a terminal shows. */
        size_t at = 0;
        while (got[at] && got[at] == want[at])
            at++;
        if (got[at] != want[at])
            print_error("differ at byte %zu of %zu: got %.40s... want %.40s...\n", at, len,
                        got + at, want + at);
        assert_int_equal(got[at], want[at]);
        assert_int_equal(strlen(want), len);
        free(want);
        m.base_url = "x";
    }
}

static void test_manifest_atomic_replace(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[512] = "";
    struct stat a, b, d;
    mode_t old = umask(022);

    build_sample(&m);
    assert_int_equal(gf_manifest_save(test_path("out"), &m, err, sizeof err), 0);
    assert_int_equal(stat(test_path("out/.getflags/manifest.json"), &a), 0);
    assert_int_equal(stat(test_path("out/.getflags"), &d), 0);
    assert_int_equal(gf_manifest_save(test_path("out"), &m, err, sizeof err), 0);
    assert_int_equal(stat(test_path("out/.getflags/manifest.json"), &b), 0);
    umask(old);
    /* A new file renamed over the old one, never the old one rewritten. */
    assert_true(a.st_ino != b.st_ino);
    assert_int_equal(b.st_mode & 07777, 0644);
    assert_int_equal(d.st_mode & 07777, 0755);
    assert_true(S_ISDIR(d.st_mode));
    /* Only the manifest is there: no temporary file left. */
    assert_string_equal(listing_of(test_path("out")), "manifest.json");
    gf_manifest_free(&m);
}

/* Temporary files of a killed save (this version's and 1.x's) go at the
 * next run's sweep; nothing else in .getflags is touched, not even a
 * directory of a temporary name. */
static void test_manifest_stale_temporaries_removed(void **state)
{
    (void)state;
    struct gf_manifest m = {0};
    char err[512] = "";
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    write_file(".getflags/manifest.json.tmp-999999-0", "{", 1);
    write_file(".getflags/manifest.json.tmp-1-7", "", 0);
    write_file(".getflags/lock", "123\n", 4);
    write_file(".getflags/notes", "x", 1);
    write_file(".getflags/.getflags-tmp-4-2", "x", 1);
    write_file(".getflags/.getflags-tmp-4-2x", "x", 1);
    assert_int_equal(mkdir(test_path(".getflags/.getflags-tmp-5-1"), 0777), 0);
    int sfd = open(test_path(".getflags"), O_RDONLY | O_DIRECTORY);
    assert_true(sfd >= 0);
    assert_int_equal(gf_afile_sweep(sfd), 3);
    close(sfd);
    assert_int_equal(gf_manifest_save(test_dir, &m, err, sizeof err), 0);
    assert_string_equal(state_listing(),
                        ".getflags-tmp-4-2x .getflags-tmp-5-1 lock manifest.json notes");
}

static void expect_unusable(const char *text, size_t len, int want, const char *reason)
{
    struct gf_manifest m;
    char err[512] = "", msg[700];

    mkdir(test_path(".getflags"), 0777);
    write_file(".getflags/manifest.json", text, len);
    m.n = 99;
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), want);
    assert_int_equal(m.n, 0);
    assert_null(m.entries);
    assert_null(m.run_time);
    snprintf(msg, sizeof msg, "%s/.getflags/manifest.json: %s", test_dir, reason);
    assert_string_equal(err, msg);
    gf_manifest_free(&m);
}

#define GOOD_HEAD "{\"version\": 1, \"run_time\": \"2026-11-21T20:41:03Z\", \"base_url\": null, "

static void test_manifest_corrupt_files(void **state)
{
    (void)state;
    expect_unusable("", 0, GF_EMETADATA, "not valid JSON (at byte 0)");
    expect_unusable("{", 1, GF_EMETADATA, "not valid JSON (at byte 0)");
    expect_unusable("{\"version\": 1,, }", 17, GF_EMETADATA, "not valid JSON (at byte 15)");
    expect_unusable("{\"version\": 1, \"entries\": []} x", 31, GF_EMETADATA,
                    "not valid JSON (at byte 30)");
    /* A NUL after the document is not white space. */
    expect_unusable("{\"version\": 1, \"entries\": []}\n\0", 31, GF_EMETADATA,
                    "not valid JSON (at byte 30)");
    expect_unusable("[]", 2, GF_EMETADATA, "not a JSON object");
    expect_unusable("\"manifest\"", 10, GF_EMETADATA, "not a JSON object");
    expect_unusable("{\"version\": 3, \"entries\": []}", 29, GF_EMETADATA,
                    "\"version\" is not 1 or 2");
    expect_unusable("{\"version\": \"1\", \"entries\": []}", 31, GF_EMETADATA,
                    "\"version\" is not 1 or 2");
    expect_unusable("{\"version\": 1}", 14, GF_EMETADATA, "\"entries\" is not an array");
    expect_unusable("{\"version\": 1, \"entries\": {}}", 29, GF_EMETADATA,
                    "\"entries\" is not an array");
    const char *bad_time[] = {
        "{\"version\": 1, \"run_time\": \"2026-11-21 20:41:03\", \"entries\": []}",
        "{\"version\": 1, \"run_time\": \"2026-11-21T20:41:03+09:00\", \"entries\": []}",
        "{\"version\": 1, \"run_time\": \"2026-13-21T20:41:03Z\", \"entries\": []}",
        "{\"version\": 1, \"run_time\": 1795293663, \"entries\": []}",
    };
    for (size_t i = 0; i < sizeof bad_time / sizeof bad_time[0]; i++)
        expect_unusable(bad_time[i], strlen(bad_time[i]), GF_EMETADATA,
                        "\"run_time\" is not a UTC time like 2026-11-21T20:41:03Z");
    /* Strings cJSON would take but a C string cannot hold faithfully. */
    const char *nul = GOOD_HEAD "\"entries\": [{\"cc\": \"AA\", \"status\": \"ok\", "
                                "\"file\": \"a.gif\\u0000/../../x\"}]}";
    char msg[128];
    snprintf(msg, sizeof msg, "a string holds \\u0000 (at byte %zu)",
             (size_t)(strstr(nul, "\\u0000") - nul));
    expect_unusable(nul, strlen(nul), GF_EMETADATA, msg);
    /* An escaped backslash before u0000 is just text. */
    const char *text = GOOD_HEAD "\"entries\": [{\"cc\": \"AA\", \"status\": \"error\", "
                                 "\"error\": \"\\\\u0000\"}]}";
    plant(text);
    struct gf_manifest m;
    char err[512];
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    assert_string_equal(m.entries[0].error, "\\u0000");
    gf_manifest_free(&m);
    const char *raw = "{\"version\": 1, \"base_url\": \"a\x01"
                      "b\", \"entries\": []}";
    expect_unusable(raw, strlen(raw), GF_EMETADATA, "not valid JSON (at byte 29)");
    const char *surrogate = GOOD_HEAD "\"entries\": [{\"cc\": \"AA\", \"status\": \"ok\", "
                                      "\"file\": \"\\ud800.gif\"}]}";
    plant(surrogate);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), GF_EMETADATA);
    assert_non_null(strstr(err, "not valid JSON"));

    const char *bad_url = "{\"version\": 1, \"base_url\": [], \"entries\": []}";
    expect_unusable(bad_url, strlen(bad_url), GF_EMETADATA, "\"base_url\" is not a string");
}

/* Loads text (a manifest whose entries are the given JSON array body) and
 * checks which codes survive. */
static void expect_kept(const char *entries, const char *kept, size_t skipped,
                        const char *first_reason)
{
    struct gf_manifest m;
    char err[1024] = "", text[8192], msg[1200], got[256] = "";

    snprintf(text, sizeof text, GOOD_HEAD "\"entries\": [%s]}", entries);
    plant(text);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    for (size_t i = 0; i < m.n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, m.entries[i].cc);
        /* Whatever was kept is safe to use as a path in DIR. */
        if (m.entries[i].file)
            assert_true(gf_manifest_file_ok(m.entries[i].file));
    }
    assert_string_equal(got, kept);
    assert_int_equal(m.skipped, skipped);
    if (skipped == 0) {
        assert_string_equal(err, "");
    } else {
        snprintf(msg, sizeof msg, "%s/.getflags/manifest.json: skipped %zu invalid entr%s; %s",
                 test_dir, skipped, skipped == 1 ? "y" : "ies", first_reason);
        assert_string_equal(err, msg);
    }
    gf_manifest_free(&m);
}

#define OK_ENTRY(cc, file) "{\"cc\": \"" cc "\", \"status\": \"ok\", \"file\": " file "}"

static void test_manifest_hostile_file_names(void **state)
{
    (void)state;
    const char *bad[] = {
        "\"../x.gif\"",
        "\"/etc/passwd\"",
        "\"/tmp/x.gif\"",
        "\".hidden.gif\"",
        "\"..gif\"",
        "\".gif\"",
        "\"a/b.gif\"",
        "\"a\\\\b.gif\"",
        "\"x.GIF\"",
        "\"x.gif.sh\"",
        "\"x.gif/\"",
        "\"tab\\there.gif\"",
        "\"nl\\nhere.gif\"",
        "\"c1\\u0085.gif\"",
        "\"del\\u007f.gif\"",
        "\"\"",
        "7",
        "[\"x.gif\"]",
        "\"\xff\xfe.gif\"",         /* invalid UTF-8 */
        "\"\xc0\xaf.gif\"",         /* overlong '/' */
        "\"\xed\xa0\x80.gif\"",     /* a surrogate */
        "\"\xf4\x90\x80\x80.gif\"", /* past U+10FFFF */
    };
    char entries[512], reason[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(entries, sizeof entries, OK_ENTRY("AA", "%s") ", " OK_ENTRY("BB", "\"b.gif\""),
                 bad[i]);
        snprintf(reason, sizeof reason,
                 "the first, entry 1 (AA): \"file\" is not a plain .gif file name");
        expect_kept(entries, "BB", 1, reason);
    }

    /* GF_NAME_MAX bytes is the longest name kept. */
    char name[GF_NAME_MAX + 8];
    memset(name, 'n', sizeof name);
    strcpy(name + GF_NAME_MAX - 4, ".gif");
    snprintf(entries, sizeof entries, OK_ENTRY("AA", "\"%s\""), name);
    expect_kept(entries, "AA", 0, NULL);
    memset(name, 'n', sizeof name);
    strcpy(name + GF_NAME_MAX - 3, ".gif");
    snprintf(entries, sizeof entries, OK_ENTRY("AA", "\"%s\""), name);
    expect_kept(entries, "", 1, "the first, entry 1 (AA): \"file\" is not a plain .gif file name");
}

static void test_manifest_invalid_entries_skipped(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *reason;
    } cases[] = {
        {"7", "the first, entry 1: not an object"},
        {"{\"status\": \"ok\", \"file\": \"x.gif\"}",
         "the first, entry 1: \"cc\" is not a code of two letters A-Z"},
        {OK_ENTRY("br", "\"x.gif\""),
         "the first, entry 1: \"cc\" is not a code of two letters A-Z"},
        {OK_ENTRY("B", "\"x.gif\""), "the first, entry 1: \"cc\" is not a code of two letters A-Z"},
        {OK_ENTRY("BRA", "\"x.gif\""),
         "the first, entry 1: \"cc\" is not a code of two letters A-Z"},
        {"{\"cc\": 12, \"status\": \"ok\", \"file\": \"x.gif\"}",
         "the first, entry 1: \"cc\" is not a code of two letters A-Z"},
        {"{\"cc\": \"AA\", \"status\": \"fine\", \"file\": \"x.gif\"}",
         "the first, entry 1 (AA): \"status\" is not ok, not_found, error or unchanged"},
        {"{\"cc\": \"AA\", \"status\": \"pending\", \"file\": \"x.gif\"}",
         "the first, entry 1 (AA): \"status\" is not ok, not_found, error or unchanged"},
        {"{\"cc\": \"AA\", \"file\": \"x.gif\"}",
         "the first, entry 1 (AA): \"status\" is not ok, not_found, error or unchanged"},
        {"{\"cc\": \"AA\", \"status\": \"ok\"}", "the first, entry 1 (AA): \"file\" is missing"},
        {"{\"cc\": \"AA\", \"status\": \"unchanged\", \"file\": null}",
         "the first, entry 1 (AA): \"file\" is missing"},
        {"{\"cc\": \"AA\", \"status\": \"error\", \"http_status\": 1000}",
         "the first, entry 1 (AA): \"http_status\" is not a whole number from 0 to 999"},
        {"{\"cc\": \"AA\", \"status\": \"error\", \"http_status\": 200.5}",
         "the first, entry 1 (AA): \"http_status\" is not a whole number from 0 to 999"},
        {"{\"cc\": \"AA\", \"status\": \"error\", \"http_status\": \"200\"}",
         "the first, entry 1 (AA): \"http_status\" is not a whole number from 0 to 999"},
        {"{\"cc\": \"AA\", \"status\": \"error\", \"http_status\": -1}",
         "the first, entry 1 (AA): \"http_status\" is not a whole number from 0 to 999"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"bytes\": -1}",
         "the first, entry 1 (AA): \"bytes\" is not a whole number of bytes"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"bytes\": 1.5}",
         "the first, entry 1 (AA): \"bytes\" is not a whole number of bytes"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"bytes\": 1e300}",
         "the first, entry 1 (AA): \"bytes\" is not a whole number of bytes"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"sha256\": \"abc\"}",
         "the first, entry 1 (AA): \"sha256\" is not 64 lower-case hex digits"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"sha256\": \"\"}",
         "the first, entry 1 (AA): \"sha256\" is not 64 lower-case hex digits"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"sha256\": "
         "\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\"}",
         "the first, entry 1 (AA): \"sha256\" is not 64 lower-case hex digits"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"sha256\": "
         "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550\"}",
         "the first, entry 1 (AA): \"sha256\" is not 64 lower-case hex digits"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"meta\": []}",
         "the first, entry 1 (AA): \"meta\" or \"image\" is not an object"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"image\": {\"etag\": 5}}",
         "the first, entry 1 (AA): \"etag\" or \"last_modified\" is not a string"},
        /* Header injection through a conditional GET. */
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"image\": "
         "{\"etag\": \"\\\"x\\\"\\r\\nX-Evil: 1\"}}",
         "the first, entry 1 (AA): \"etag\" or \"last_modified\" cannot be sent back in a header"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"meta\": "
         "{\"last_modified\": \"\"}}",
         "the first, entry 1 (AA): \"etag\" or \"last_modified\" cannot be sent back in a header"},
        {"{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"meta\": "
         "{\"etag\": \"caf\xc3\xa9\"}}",
         "the first, entry 1 (AA): \"etag\" or \"last_modified\" cannot be sent back in a header"},
        {"{\"cc\": \"AA\", \"status\": \"error\", \"error\": 42}",
         "the first, entry 1 (AA): \"error\" is not a string"},
    };
    char entries[2048];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(entries, sizeof entries, "%s, " OK_ENTRY("ZZ", "\"z.gif\""), cases[i].entry);
        expect_kept(entries, "ZZ", 1, cases[i].reason);
    }
    /* An ETag just at the limit is kept, one byte more is not. */
    char etag[GF_HEADER_VALUE_MAX + 2];
    memset(etag, 'e', sizeof etag);
    etag[GF_HEADER_VALUE_MAX] = '\0';
    snprintf(entries, sizeof entries,
             "{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"meta\": "
             "{\"etag\": \"%s\"}}",
             etag);
    expect_kept(entries, "AA", 0, NULL);
    etag[GF_HEADER_VALUE_MAX] = 'e';
    etag[GF_HEADER_VALUE_MAX + 1] = '\0';
    snprintf(entries, sizeof entries,
             "{\"cc\": \"AA\", \"status\": \"ok\", \"file\": \"x.gif\", \"meta\": "
             "{\"etag\": \"%s\"}}",
             etag);
    expect_kept(entries, "", 1,
                "the first, entry 1 (AA): \"etag\" or \"last_modified\" cannot be sent back in a "
                "header");

    /* Duplicates: the first one wins. Several bad entries: the count and the
     * first reason. Unknown keys and nulls are fine. */
    expect_kept(OK_ENTRY("BR", "\"one.gif\"") ", " OK_ENTRY("BR", "\"two.gif\""), "BR", 1,
                "the first, entry 2 (BR): its code is listed twice");
    expect_kept(OK_ENTRY("BR", "\"Brazil.gif\"") ", " OK_ENTRY("FR", "\"Brazil.gif\""), "BR", 1,
                "the first, entry 2 (FR): its file is named by another entry too");
    expect_kept("1, 2, " OK_ENTRY("CC", "\"c.gif\"") ", 3", "CC", 3,
                "the first, entry 1: not an object");
    expect_kept("{\"cc\": \"AA\", \"status\": \"not_found\", \"file\": null, \"http_status\": "
                "null, \"bytes\": null, \"sha256\": null, \"meta\": null, \"image\": {\"etag\": "
                "null, \"timings\": null}, \"error\": null, \"future\": [1, {}]}",
                "AA", 0, NULL);
}

/* Values read back: an error text with control characters comes back with
 * them as '?'; the timings of a version 1 file are ignored. */
static void test_manifest_load_values(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[512];
    plant(GOOD_HEAD "\"entries\": [{\"cc\": \"XX\", \"status\": \"error\", \"http_status\": 503, "
                    "\"error\": \"bad\\u001b[31m \\u0085 \\u00e9\", \"meta\": {\"timings\": "
                    "{\"dns\": -3, \"total\": 0.25}}}]}");
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(m.n, 1);
    const struct gf_manifest_entry *e = gf_manifest_find(&m, "XX");
    assert_non_null(e);
    assert_string_equal(e->error, "bad?[31m ?? \xc3\xa9");
    assert_int_equal(e->http_status, 503);
    assert_null(e->file);
    assert_null(m.base_url);
    assert_string_equal(m.run_time, "2026-11-21T20:41:03Z");
    gf_manifest_free(&m);
}

static void test_manifest_size_cap(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[512], msg[600];
    const char *doc = "{\"version\": 1, \"entries\": []}";

    /* Exactly GF_MANIFEST_MAX_BYTES, white space after the document: read. */
    size_t len = GF_MANIFEST_MAX_BYTES;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memset(big, ' ', len + 1);
    memcpy(big, doc, strlen(doc));
    mkdir(test_path(".getflags"), 0777);
    write_file(".getflags/manifest.json", big, len);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    gf_manifest_free(&m);

    /* One byte more: refused. */
    write_file(".getflags/manifest.json", big, len + 1);
    free(big);
    snprintf(msg, sizeof msg, "%s/.getflags/manifest.json: larger than 16 MiB", test_dir);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), GF_EMETADATA);
    assert_string_equal(err, msg);

    /* A sparse giant is refused without reading it. */
    int fd = open(test_path(".getflags/manifest.json"), O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)1 << 34), 0);
    close(fd);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), GF_EMETADATA);
    assert_string_equal(err, msg);
}

/* Builds {"version": 1, "entries": [1,1,...]} with n numbers: n + 2
 * values by the count of commas and brackets. */
static char *numbers_doc(size_t n)
{
    const char *head = "{\"version\": 1, \"entries\": [";
    size_t hl = strlen(head);
    char *doc = malloc(hl + 2 * n + 3);
    assert_non_null(doc);
    memcpy(doc, head, hl);
    char *p = doc + hl;
    for (size_t i = 0; i < n; i++) {
        *p++ = '1';
        *p++ = ',';
    }
    p[-1] = ']';
    *p++ = '}';
    *p = '\0';
    return doc;
}

/* A file full of tiny values would cost cJSON far more memory than its
 * size: refused past GF_MANIFEST_MAX_VALUES. */
static void test_manifest_value_cap(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[512], msg[600];

    char *doc = numbers_doc(GF_MANIFEST_MAX_VALUES - 2);
    plant(doc);
    free(doc);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(m.n, 0);
    assert_int_equal(m.skipped, GF_MANIFEST_MAX_VALUES - 2);
    gf_manifest_free(&m);

    doc = numbers_doc(GF_MANIFEST_MAX_VALUES - 1);
    plant(doc);
    snprintf(msg, sizeof msg, "%s/.getflags/manifest.json: too many values (at byte %zu)", test_dir,
             (size_t)(strrchr(doc, ',') - doc));
    free(doc);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), GF_EMETADATA);
    assert_string_equal(err, msg);

    /* Commas and brackets inside strings are text, not values. */
    size_t n = GF_MANIFEST_MAX_VALUES + 10;
    char *text = malloc(n + 200);
    assert_non_null(text);
    int hl = sprintf(text, "{\"version\": 1, \"base_url\": \"");
    memset(text + hl, ',', n);
    strcpy(text + hl + n, "\", \"entries\": []}");
    plant(text);
    free(text);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(strlen(m.base_url), n);
    gf_manifest_free(&m);
}

static void test_manifest_load_refuses_links_and_specials(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[512], msg[700];

    /* manifest.json a link to a good manifest elsewhere: not followed. */
    assert_int_equal(mkdir(test_path("elsewhere"), 0777), 0);
    write_file("elsewhere/m.json", "{\"version\": 1, \"entries\": []}", 29);
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    assert_int_equal(symlink(test_path("elsewhere/m.json"), test_path(".getflags/manifest.json")),
                     0);
    snprintf(msg, sizeof msg,
             "cannot open %s/.getflags/manifest.json: it is a symbolic link (not followed)",
             test_dir);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), -ELOOP);
    assert_string_equal(err, msg);

    /* A FIFO (would block a plain open) and a directory. */
    assert_int_equal(unlink(test_path(".getflags/manifest.json")), 0);
    assert_int_equal(mkfifo(test_path(".getflags/manifest.json"), 0666), 0);
    snprintf(msg, sizeof msg, "%s/.getflags/manifest.json: not a regular file", test_dir);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), GF_EMETADATA);
    assert_string_equal(err, msg);
    assert_int_equal(unlink(test_path(".getflags/manifest.json")), 0);
    assert_int_equal(mkdir(test_path(".getflags/manifest.json"), 0777), 0);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), GF_EMETADATA);
    assert_string_equal(err, msg);

    /* .getflags itself a link, or a file. */
    assert_int_equal(rmdir(test_path(".getflags/manifest.json")), 0);
    assert_int_equal(rmdir(test_path(".getflags")), 0);
    assert_int_equal(symlink(test_path("elsewhere"), test_path(".getflags")), 0);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags: it is a symbolic link (not followed)",
             test_dir);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), -ELOOP);
    assert_string_equal(err, msg);
    assert_int_equal(unlink(test_path(".getflags")), 0);
    write_file(".getflags", "", 0);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags: it is not a directory", test_dir);
    assert_int_equal(gf_manifest_load(test_dir, &m, err, sizeof err), -ENOTDIR);
    assert_string_equal(err, msg);
    assert_int_equal(m.n, 0);
}

static void expect_save_fails(const char *d, int want, const char *want_msg)
{
    struct gf_manifest m;
    char err[700] = "";
    build_sample(&m);
    assert_int_equal(gf_manifest_save(d, &m, err, sizeof err), want);
    assert_string_equal(err, want_msg);
    gf_manifest_free(&m);
}

static void test_manifest_save_refuses_bad_state_dir(void **state)
{
    (void)state;
    char msg[700];

    /* A file where .getflags should be. */
    write_file(".getflags", "not a dir", 9);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags: it is not a directory", test_dir);
    expect_save_fails(test_dir, -ENOTDIR, msg);

    /* A link at .getflags: nothing is written through it. */
    assert_int_equal(unlink(test_path(".getflags")), 0);
    assert_int_equal(mkdir(test_path("target"), 0777), 0);
    assert_int_equal(symlink(test_path("target"), test_path(".getflags")), 0);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags: it is a symbolic link (not followed)",
             test_dir);
    expect_save_fails(test_dir, -ELOOP, msg);
    assert_int_equal(rmdir(test_path("target")), 0); /* still empty */

    /* DIR a file, DIR's parent missing. */
    write_file("plain", "", 0);
    snprintf(msg, sizeof msg, "cannot open %s: it is not a directory", test_path("plain"));
    expect_save_fails(test_path("plain"), -ENOTDIR, msg);
    snprintf(msg, sizeof msg, "cannot create %s: %s", test_path("a/b"), uv_strerror(UV_ENOENT));
    expect_save_fails(test_path("a/b"), -ENOENT, msg);

    /* Not writable: only meaningful for a user without root's override. */
    if (geteuid() != 0) {
        assert_int_equal(mkdir(test_path("ro"), 0777), 0);
        assert_int_equal(mkdir(test_path("ro/.getflags"), 0555), 0);
        char tmpmsg[700];
        snprintf(tmpmsg, sizeof tmpmsg, "cannot create a temporary file in %s/.getflags: %s",
                 test_path("ro"), uv_strerror(UV_EACCES));
        struct gf_manifest m;
        char err[700];
        build_sample(&m);
        assert_int_equal(gf_manifest_save(test_path("ro"), &m, err, sizeof err), -EACCES);
        assert_string_equal(err, tmpmsg);
        gf_manifest_free(&m);
    }
}

/* No temporary file can be made (here: the next hundred names taken, as
 * root ignores permissions): the message names the directory, not a
 * temporary name that was never made. */
static void test_manifest_save_cannot_make_its_temporary_file(void **state)
{
    (void)state;
    struct gf_manifest m;
    struct gf_afile a;
    char err[700], want[700], name[128];
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    int sfd = open(test_path(".getflags"), O_RDONLY | O_DIRECTORY);
    assert_true(sfd >= 0);
    assert_int_equal(gf_afile_open_nodigest(&a, sfd), 0);
    unsigned long long id = strtoull(strrchr(a.tmp, '-') + 1, NULL, 10);
    gf_afile_abort(&a);
    for (unsigned i = 1; i <= 100; i++) {
        snprintf(name, sizeof name, ".getflags-tmp-%ld-%llu", (long)getpid(), id + i);
        assert_int_equal(mkdirat(sfd, name, 0777), 0);
    }
    close(sfd);
    build_sample(&m);
    assert_int_equal(gf_manifest_save(test_dir, &m, err, sizeof err), -EEXIST);
    snprintf(want, sizeof want, "cannot create a temporary file in %s/.getflags: %s", test_dir,
             uv_strerror(UV_EEXIST));
    assert_string_equal(err, want);
    gf_manifest_free(&m);
}

/* The rename fails (a directory sits at manifest.json): error, and the
 * temporary file is gone. */
static void test_manifest_save_rename_failure(void **state)
{
    (void)state;
    struct gf_manifest m;
    char err[700], want[700];
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    assert_int_equal(mkdir(test_path(".getflags/manifest.json"), 0777), 0);
    write_file(".getflags/manifest.json/keep", "", 0);
    build_sample(&m);
    assert_true(gf_manifest_save(test_dir, &m, err, sizeof err) < 0);
    snprintf(want, sizeof want,
             "cannot save the manifest %s/.getflags/manifest.json: rename failed: ", test_dir);
    assert_memory_equal(err, want, strlen(want));
    assert_string_equal(state_listing(), "manifest.json");
    gf_manifest_free(&m);
}

/* A write that fails part-way (here the file size limit, as a full disk
 * would): error naming the file, old manifest intact, no temporary left. */
static void test_manifest_save_write_failure(void **state)
{
    (void)state;
    struct gf_manifest m = {0}, big;
    char err[700] = "", want[700];
    size_t len;

    assert_int_equal(gf_manifest_save(test_dir, &m, err, sizeof err), 0);
    /* slurp's buffer is reused by the next call: keep a copy. */
    char before[4096];
    const char *was = slurp(".getflags/manifest.json", &len);
    assert_true(len < sizeof before);
    memcpy(before, was, len);
    before[len] = '\0';

    build_sample(&big);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 512;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = gf_manifest_save(test_dir, &big, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);

    assert_int_equal(rc, -EFBIG);
    snprintf(want, sizeof want,
             "cannot save the manifest %s/.getflags/manifest.json: write failed: %s", test_dir,
             uv_strerror(UV_EFBIG));
    assert_string_equal(err, want);
    assert_string_equal(state_listing(), "manifest.json");
    assert_string_equal(slurp(".getflags/manifest.json", &len), before);
    gf_manifest_free(&big);
}

static void test_manifest_utc_whatever_tz(void **state)
{
    (void)state;
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    char out[GF_MANIFEST_TIME_LEN];
    struct tm local;
    const time_t t = 1795293663; /* 2026-11-21T20:41:03Z */

    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    /* The zone is in force (Tokyo is UTC+9, no DST)... */
    localtime_r(&t, &local);
    assert_int_equal(local.tm_hour, 5);
    assert_int_equal(local.tm_mday, 22);
    /* ...and the manifest's time is UTC regardless. */
    assert_int_equal(gf_manifest_time(t, out), 0);
    assert_string_equal(out, "2026-11-21T20:41:03Z");

    /* Through a save and a load. */
    struct gf_manifest m = {0}, back;
    char err[512];
    assert_int_equal(gf_manifest_time(time(NULL), out), 0);
    assert_int_equal(gf_manifest_set_run(&m, out, NULL), 0);
    assert_int_equal(gf_manifest_save(test_dir, &m, err, sizeof err), 0);
    assert_int_equal(gf_manifest_load(test_dir, &back, err, sizeof err), 0);
    assert_string_equal(back.run_time, out);
    struct tm utc;
    time_t now = time(NULL);
    gmtime_r(&now, &utc);
    char hour[8];
    snprintf(hour, sizeof hour, "T%02d:", utc.tm_hour);
    /* Same UTC hour as now (give or take the top of the hour). */
    if (utc.tm_min != 0 || utc.tm_sec > 5)
        assert_non_null(strstr(back.run_time, hour));
    gf_manifest_free(&m);
    gf_manifest_free(&back);

    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void test_manifest_time_range(void **state)
{
    (void)state;
    char out[GF_MANIFEST_TIME_LEN];
    assert_int_equal(gf_manifest_time(0, out), 0);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    assert_int_equal(gf_manifest_time(-1, out), 0);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    assert_int_equal(gf_manifest_time((time_t)253402300799LL, out), 0);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    assert_int_equal(gf_manifest_time((time_t)253402300800LL, out), UV_EINVAL);
    assert_int_equal(gf_manifest_time((time_t)1 << 62, out), UV_EINVAL);

    struct gf_manifest m = {0};
    assert_int_equal(gf_manifest_set_run(&m, "2026-11-21T20:41:03+09:00", "u"), UV_EINVAL);
    assert_int_equal(gf_manifest_set_run(&m, "2026-11-21T24:00:00Z", "u"), UV_EINVAL);
    assert_int_equal(gf_manifest_set_run(&m, "2026-11-21t20:41:03z", "u"), UV_EINVAL);
    assert_null(m.run_time);
    assert_null(m.base_url);
    assert_int_equal(gf_manifest_set_run(&m, "2026-11-21T20:41:03Z", "http://x/"), 0);
    assert_int_equal(gf_manifest_set_run(&m, NULL, "http://y/"), 0);
    assert_null(m.run_time);
    assert_string_equal(m.base_url, "http://y/");
    gf_manifest_free(&m);
}

static void test_manifest_set_rules(void **state)
{
    (void)state;
    struct gf_manifest m;
    struct gf_manifest_entry e;
    build_sample(&m);

    /* Each refused without changing m. */
    e = entry("br", GF_OK, "x.gif");
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", (enum gf_status)42, "x.gif");
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_OK, "../x.gif");
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_OK, NULL);
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_UNCHANGED, NULL);
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_OK, "x.gif");
    strcpy(e.sha256, "ABC");
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_OK, "x.gif");
    memset(e.sha256, 'a', sizeof e.sha256); /* no NUL at all */
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_OK, "x.gif");
    e.status = GF_PENDING; /* never in a manifest */
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_ERROR, NULL);
    e.http_status = 1000;
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e.http_status = -1;
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    e = entry("BR", GF_OK, "x.gif");
    e.bytes = (1ULL << 53) + 2;
    assert_int_equal(gf_manifest_set(&m, &e), UV_EINVAL);
    assert_int_equal(m.n, 5);
    assert_null(gf_manifest_find(&m, "BR"));

    /* Server values: unsafe ones are not stored, or cleaned. */
    e = entry("BR", GF_ERROR, NULL);
    e.meta.etag = "\"ok\"\r\nSet-Cookie: x";
    e.meta.last_modified = "";
    e.image.etag = "\"fine\"";
    e.error = "reason \x1b[2J \xff end\n";
    assert_int_equal(gf_manifest_set(&m, &e), 0);
    const struct gf_manifest_entry *got = gf_manifest_find(&m, "BR");
    assert_non_null(got);
    assert_null(got->meta.etag);
    assert_null(got->meta.last_modified);
    assert_string_equal(got->image.etag, "\"fine\"");
    assert_string_equal(got->error, "reason ?[2J ? end?");
    assert_int_equal(m.n, 6);

    /* Replacing keeps one entry per code, and the copy is independent of
     * the caller's strings; e may even be the entry itself. */
    char file[] = "Brasil.gif";
    e = entry("BR", GF_OK, file);
    e.http_status = 200;
    assert_int_equal(gf_manifest_set(&m, &e), 0);
    file[0] = 'X';
    got = gf_manifest_find(&m, "BR");
    assert_string_equal(got->file, "Brasil.gif");
    assert_null(got->error);
    assert_int_equal(m.n, 6);
    assert_int_equal(gf_manifest_set(&m, gf_manifest_find(&m, "BR")), 0);
    got = gf_manifest_find(&m, "BR");
    assert_string_equal(got->file, "Brasil.gif");
    assert_int_equal(got->status, GF_OK);
    assert_int_equal(got->http_status, 200);
    assert_int_equal(m.n, 6);
    gf_manifest_free(&m);
}

static void test_manifest_find(void **state)
{
    (void)state;
    struct gf_manifest m;
    build_sample(&m);
    assert_string_equal(gf_manifest_find(&m, "CI")->file, "C\xc3\xb4te_d'Ivoire.gif");
    assert_int_equal(gf_manifest_find(&m, "ZZ")->status, GF_NOT_FOUND);
    assert_int_equal(gf_manifest_find(&m, "XX")->status, GF_ERROR);
    assert_null(gf_manifest_find(&m, "AA"));
    assert_null(gf_manifest_find(&m, "ci"));
    assert_null(gf_manifest_find(&m, "FRA"));
    assert_null(gf_manifest_find(&m, NULL));
    assert_null(gf_manifest_find(NULL, "CI"));
    /* Many codes, inserted from the end: still found, still sorted. */
    for (int i = 675; i >= 0; i--) {
        struct gf_manifest_entry e = entry("", GF_NOT_FOUND, NULL);
        e.cc[0] = (char)('A' + i / 26);
        e.cc[1] = (char)('A' + i % 26);
        e.cc[2] = '\0';
        assert_int_equal(gf_manifest_set(&m, &e), 0);
    }
    assert_int_equal(m.n, 676);
    for (size_t i = 1; i < m.n; i++)
        assert_true(strcmp(m.entries[i - 1].cc, m.entries[i].cc) < 0);
    assert_string_equal(gf_manifest_find(&m, "MN")->cc, "MN");
    gf_manifest_free(&m);
}

static void test_manifest_free_twice(void **state)
{
    (void)state;
    struct gf_manifest m;
    build_sample(&m);
    gf_manifest_free(&m);
    assert_int_equal(m.n, 0);
    assert_null(m.entries);
    assert_null(m.run_time);
    gf_manifest_free(&m);
    gf_manifest_free(NULL);
    /* Reusable after a free. */
    struct gf_manifest_entry e = entry("AA", GF_OK, "a.gif");
    assert_int_equal(gf_manifest_set(&m, &e), 0);
    assert_int_equal(m.n, 1);
    gf_manifest_free(&m);
}

static void test_manifest_file_ok(void **state)
{
    (void)state;
    assert_true(gf_manifest_file_ok("Brazil.gif"));
    assert_true(gf_manifest_file_ok("C\xc3\xb4te_d'Ivoire.gif"));
    assert_true(gf_manifest_file_ok("Korea,_Republic_of_KR.gif"));
    assert_true(gf_manifest_file_ok("a.gif"));
    assert_true(gf_manifest_file_ok("\xf0\x9f\x8f\xb3.gif"));
    assert_false(gf_manifest_file_ok(NULL));
    assert_false(gf_manifest_file_ok(""));
    assert_false(gf_manifest_file_ok(".gif"));
    assert_false(gf_manifest_file_ok("gif"));
    assert_false(gf_manifest_file_ok(".x.gif"));
    assert_false(gf_manifest_file_ok("../x.gif"));
    assert_false(gf_manifest_file_ok("x/../y.gif"));
    assert_false(gf_manifest_file_ok("x.png"));
    assert_false(gf_manifest_file_ok("x.gif "));
    assert_false(gf_manifest_file_ok("\xc2\x85x.gif"));
    assert_false(gf_manifest_file_ok("\xe0\x80\xaf.gif")); /* overlong */
    assert_false(gf_manifest_file_ok("x\xc3.gif"));        /* cut sequence */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tmpdir_setup, tmpdir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_manifest_missing_is_empty),
        T(test_manifest_round_trip),
        T(test_manifest_text_is_cjson_text),
        T(test_manifest_atomic_replace),
        T(test_manifest_stale_temporaries_removed),
        T(test_manifest_corrupt_files),
        T(test_manifest_hostile_file_names),
        T(test_manifest_invalid_entries_skipped),
        T(test_manifest_load_values),
        T(test_manifest_size_cap),
        T(test_manifest_value_cap),
        T(test_manifest_load_refuses_links_and_specials),
        T(test_manifest_save_refuses_bad_state_dir),
        T(test_manifest_save_cannot_make_its_temporary_file),
        T(test_manifest_save_rename_failure),
        T(test_manifest_save_write_failure),
        T(test_manifest_utc_whatever_tz),
        T(test_manifest_time_range),
        T(test_manifest_set_rules),
        T(test_manifest_find),
        T(test_manifest_free_twice),
        T(test_manifest_file_ok),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
