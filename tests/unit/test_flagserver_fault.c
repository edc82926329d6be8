/* Fault paths: names, the answer each fault gives, first-request memory and
 * the bodies built at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flagserver/fault.h"

static void test_fault_parse(void **state)
{
    size_t off;
    const char *t = "/fault/reset/flags/br/br.gif";

    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_RESET);
    assert_string_equal(t + off, "/flags/br/br.gif");
    t = "/fault/gzipbomb-te/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_GZIPBOMB_TE);
    t = "/fault/gzipbomb/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_GZIPBOMB);
    t = "/fault/429";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_429);
    assert_int_equal(off, strlen(t));
    t = "/fault/nosuch/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_UNKNOWN);
    t = "/faults/reset/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_NONE);
    assert_int_equal(off, 0);
    t = "/flags/br/br.gif";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_NONE);
    assert_string_equal(fs_fault_name(FS_FAULT_REDIRECT_OK), "redirect-ok");
}

static fs_faults faults;

static int answer(fs_fault f, const char *t, fs_answer *a)
{
    size_t off;

    assert_int_equal(fs_fault_parse(t, strlen(t), &off), f);
    return fs_fault_answer(&faults, f, t, strlen(t), off, "image/gif", a);
}

static void test_fault_fixed_answers(void **state)
{
    fs_answer a;

    assert_int_equal(answer(FS_FAULT_BADCHUNK, "/fault/badchunk/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 200 && a.clen == -1 && a.after == FS_AFTER_CLOSE);
    assert_string_equal(a.extra, "Transfer-Encoding: chunked\r\n");
    assert_true(a.len > 0 && memmem(a.body, a.len, "zz-not-a-size", 13) != NULL);
    assert_int_equal(answer(FS_FAULT_HTML, "/fault/html/x.gif", &a), FS_FAULT_ANSWERED);
    assert_string_equal(a.ctype, "text/html");
    assert_true(a.clen == (int64_t)a.len && a.after == FS_AFTER_KEEP && a.extra == NULL);
    assert_int_equal(answer(FS_FAULT_BADGZIP, "/fault/badgzip/x", &a), FS_FAULT_ANSWERED);
    assert_string_equal(a.extra, "Content-Encoding: gzip\r\n");
    assert_true(a.len > 10 && memcmp(a.body, "\x1f\x8b", 2) == 0); /* gzip magic, then junk */
    assert_string_equal(a.ctype, "image/gif");
    assert_int_equal(answer(FS_FAULT_REFUSE, "/fault/refuse/x", &a), FS_FAULT_ANSWERED);
    assert_int_equal(a.after, FS_AFTER_REFUSE);
    assert_int_equal(answer(FS_FAULT_ENDLESS, "/fault/endless/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 200 && a.clen == -1 && a.after == FS_AFTER_ENDLESS);
    assert_int_equal(answer(FS_FAULT_418, "/fault/418/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 418 && a.text);
    assert_int_equal(answer(FS_FAULT_500, "/fault/500", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 500 && a.text);
    /* File faults and ordinary targets are served from the file. */
    assert_int_equal(answer(FS_FAULT_RESET, "/fault/reset/x", &a), FS_FAULT_SERVE);
    assert_int_equal(answer(FS_FAULT_GZIP, "/fault/gzip/x", &a), FS_FAULT_SERVE);
    assert_int_equal(answer(FS_FAULT_NONE, "/flags/br/br.gif", &a), FS_FAULT_SERVE);
}

static void test_fault_redirects(void **state)
{
    fs_answer a;
    const char *t = "/fault/loop/x";

    assert_int_equal(answer(FS_FAULT_LOOP, t, &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 302 && a.loc == t && a.loc_len == strlen(t));
    assert_int_equal(answer(FS_FAULT_REDIRECT_FILE, "/fault/redirect-file/x", &a),
                     FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 18 && memcmp(a.loc, "file:///etc/passwd", 18) == 0);
    assert_int_equal(answer(FS_FAULT_REDIRECT_FTP, "/fault/redirect-ftp/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 17 && memcmp(a.loc, "ftp://127.0.0.1/x", 17) == 0);
    assert_int_equal(answer(FS_FAULT_REDIRECT_OK, "/fault/redirect-ok/flags/br/br.gif?v=1", &a),
                     FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 20 && memcmp(a.loc, "/flags/br/br.gif?v=1", 20) == 0);
    assert_int_equal(answer(FS_FAULT_REDIRECT_OK, "/fault/redirect-ok", &a), FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 1 && a.loc[0] == '/');
}

/* 429 and 503 refuse the first request of each rest path, query ignored. */
static void test_fault_first_request(void **state)
{
    fs_answer a;

    faults.seen = fs_fault_seen_new();
    assert_non_null(faults.seen);
    assert_int_equal(answer(FS_FAULT_429, "/fault/429/a?x=1", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 429 && a.text);
    assert_string_equal(a.extra, "Retry-After: 1\r\n");
    assert_int_equal(answer(FS_FAULT_429, "/fault/429/a?x=2", &a), FS_FAULT_SERVE);
    assert_int_equal(answer(FS_FAULT_503, "/fault/503/a", &a), FS_FAULT_ANSWERED);
    assert_int_equal(a.status, 503);
    assert_int_equal(answer(FS_FAULT_429, "/fault/429/b", &a), FS_FAULT_ANSWERED);
    fs_fault_seen_free(faults.seen);
    faults.seen = NULL;
}

static void test_fault_bomb(void **state)
{
    static unsigned char bomb[] = "gz", chunked[] = "2\r\ngz\r\n0\r\n\r\n";
    fs_answer a;

    faults.bomb_state = FS_BOMB_BUILDING;
    assert_int_equal(answer(FS_FAULT_GZIPBOMB, "/fault/gzipbomb/x", &a), FS_FAULT_WAIT);
    faults.bomb_state = FS_BOMB_NONE;
    assert_int_equal(answer(FS_FAULT_GZIPBOMB, "/fault/gzipbomb/x", &a), FS_FAULT_ANSWERED);
    assert_int_equal(a.status, 500);
    faults.bomb_state = FS_BOMB_READY;
    faults.bomb = (fs_bytes){bomb, 2};
    faults.bomb_chunked = (fs_bytes){chunked, sizeof(chunked) - 1};
    assert_int_equal(answer(FS_FAULT_GZIPBOMB, "/fault/gzipbomb/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.body == bomb && a.len == 2 && a.clen == 2);
    assert_string_equal(a.extra, "Content-Encoding: gzip\r\n");
    assert_int_equal(answer(FS_FAULT_GZIPBOMB_TE, "/fault/gzipbomb-te/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.body == chunked && a.clen == -1);
    assert_string_equal(a.extra, "Transfer-Encoding: gzip, chunked\r\n");
    memset(&faults.bomb, 0, sizeof(faults.bomb));
    memset(&faults.bomb_chunked, 0, sizeof(faults.bomb_chunked));
}

/* A file's answer as conn.c makes it, with an owned copy of text. */
static fs_answer file_answer(const char *text)
{
    fs_answer a = {0};

    a.status = 200;
    a.owned = (unsigned char *)strdup(text);
    a.body = a.owned;
    a.len = strlen(text);
    a.clen = (int64_t)a.len;
    a.extra2 = "ETag: \"x\"\r\n";
    return a;
}

static void test_fault_shape(void **state)
{
    char filler[] = "X-Filler-000: x\r\n";
    fs_answer a = file_answer("0123456789");

    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_NONE, &a), 0);
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_429, &a), 0);
    assert_true(a.len == 10 && a.after == FS_AFTER_KEEP);
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_SHORT, &a), 1);
    assert_true(a.len == 5 && a.clen == 10 && a.after == FS_AFTER_CLOSE);
    a.len = 10;
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_RESET, &a), 1);
    assert_true(a.len == 5 && a.clen == 10 && a.after == FS_AFTER_RESET);
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_SILENCE, &a), 1);
    assert_int_equal(a.after, FS_AFTER_SILENCE);
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_TRICKLE, &a), 1);
    assert_int_equal(a.after, FS_AFTER_TRICKLE);
    faults.filler = filler;
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_HUGEHEADERS, &a), 1);
    assert_ptr_equal(a.extra, filler);
    faults.filler = NULL;
    faults.longline = filler;
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_LONGHEADER, &a), 1);
    assert_ptr_equal(a.extra, filler);
    faults.longline = NULL;
    free(a.owned);

    /* gzip: the body becomes its gzip, without the identity's validators. */
    a = file_answer("flag flag flag flag flag flag flag flag flag flag");
    assert_int_equal(fs_fault_shape(&faults, FS_FAULT_GZIP, &a), 1);
    assert_true(a.body == a.owned && a.len >= 18 && a.clen == (int64_t)a.len);
    assert_true(memcmp(a.body, "\x1f\x8b", 2) == 0);
    assert_string_equal(a.extra, "Content-Encoding: gzip\r\n");
    assert_null(a.extra2);
    free(a.owned);
}

static void test_fault_seen(void **state)
{
    fs_fault_seen *s = fs_fault_seen_new();

    assert_non_null(s);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_429, "/a", 2), 1);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_429, "/a", 2), 0);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_503, "/a", 2), 1);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_429, "/b", 2), 1);
    fs_fault_seen_free(s);
    fs_fault_seen_free(NULL);
}

/* The filler and the bomb are built; stopping at once leaves nothing behind. */
static void test_faults_lifecycle(void **state)
{
    uv_loop_t loop;
    fs_faults f;
    const unsigned char *end;
    int stop;

    for (stop = 0; stop < 2; stop++) {
        memset(&f, 0, sizeof(f));
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(fs_faults_init(&f, &loop), 0);
        assert_int_equal(f.bomb_state, FS_BOMB_BUILDING);
        assert_int_equal(strlen(f.filler), 200 * 1024);
        assert_memory_equal(f.filler, "X-Filler-000: xxx", 17);
        assert_memory_equal(f.filler + 199 * 1024, "X-Filler-199: ", 14);
        assert_memory_equal(f.filler + 200 * 1024 - 2, "\r\n", 2);
        if (stop)
            fs_faults_stop(&f);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        if (!stop) {
            assert_int_equal(f.bomb_state, FS_BOMB_READY);
            assert_true(f.bomb.len > 1000 && f.bomb.len < 200000);
            assert_memory_equal(f.bomb.data, "\x1f\x8b", 2);
            /* Chunks of 16 KiB (hex 4000) carrying the same bytes, then the end. */
            assert_memory_equal(f.bomb_chunked.data, "4000\r\n\x1f\x8b", 8);
            assert_true(f.bomb_chunked.len > f.bomb.len);
            end = f.bomb_chunked.data + f.bomb_chunked.len - 5;
            assert_memory_equal(end, "0\r\n\r\n", 5);
        } else {
            assert_true(f.bomb_state == FS_BOMB_NONE || f.bomb_state == FS_BOMB_READY);
        }
        fs_faults_free(&f);
        assert_null(f.filler);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_parse),     cmocka_unit_test(test_fault_fixed_answers),
        cmocka_unit_test(test_fault_redirects), cmocka_unit_test(test_fault_first_request),
        cmocka_unit_test(test_fault_bomb),      cmocka_unit_test(test_fault_shape),
        cmocka_unit_test(test_fault_seen),      cmocka_unit_test(test_faults_lifecycle),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
