#include "flagserver/fault.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flagserver/strbuf.h"

#define BOMB_BYTES (50u * 1024 * 1024)
#define BOMB_CHUNK 16384
#define FILLER_LINES 200 /* 200 lines of 1 KiB: 200 KiB of headers */
#define FILLER_LINE 1024

static const char *const names[] = {
    [FS_FAULT_NONE] = "",
    [FS_FAULT_REFUSE] = "refuse",
    [FS_FAULT_RESET] = "reset",
    [FS_FAULT_SHORT] = "short",
    [FS_FAULT_BADCHUNK] = "badchunk",
    [FS_FAULT_SILENCE] = "silence",
    [FS_FAULT_TRICKLE] = "trickle",
    [FS_FAULT_LOOP] = "loop",
    [FS_FAULT_REDIRECT_FILE] = "redirect-file",
    [FS_FAULT_REDIRECT_FTP] = "redirect-ftp",
    [FS_FAULT_REDIRECT_OK] = "redirect-ok",
    [FS_FAULT_429] = "429",
    [FS_FAULT_503] = "503",
    [FS_FAULT_418] = "418",
    [FS_FAULT_500] = "500",
    [FS_FAULT_HTML] = "html",
    [FS_FAULT_HUGEHEADERS] = "hugeheaders",
    [FS_FAULT_LONGHEADER] = "longheader",
    [FS_FAULT_ENDLESS] = "endless",
    [FS_FAULT_GZIPBOMB] = "gzipbomb",
    [FS_FAULT_GZIPBOMB_TE] = "gzipbomb-te",
    [FS_FAULT_GZIP] = "gzip",
    [FS_FAULT_BADGZIP] = "badgzip",
    [FS_FAULT_UNKNOWN] = "?",
};

#define PREFIX "/fault/"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

fs_fault fs_fault_parse(const char *target, size_t len, size_t *rest_off)
{
    size_t end, n, i;

    *rest_off = 0;
    if (len < PREFIX_LEN || memcmp(target, PREFIX, PREFIX_LEN) != 0)
        return FS_FAULT_NONE;
    for (end = PREFIX_LEN; end < len && target[end] != '/' && target[end] != '?'; end++)
        ;
    n = end - PREFIX_LEN;
    *rest_off = end;
    for (i = FS_FAULT_NONE + 1; i < FS_FAULT_UNKNOWN; i++)
        if (strlen(names[i]) == n && memcmp(names[i], target + PREFIX_LEN, n) == 0)
            return (fs_fault)i;
    return FS_FAULT_UNKNOWN;
}

const char *fs_fault_name(fs_fault f)
{
    if ((unsigned)f > FS_FAULT_UNKNOWN)
        return "?";
    return names[f];
}

/* Bodies of the faults that answer 200 with fixed content. */
static const char badchunk_body[] = "4\r\nGIF8\r\nzz-not-a-size\r\nhello\r\n0\r\n\r\n";
static const char badgzip_body[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
                                   "this is not a deflate stream at all, just some text";
static const char html_body[] = "<!DOCTYPE html>\n<html><head><title>Oops</title></head>"
                                "<body><h1>This is not a flag</h1></body></html>\n";

static void set_body(fs_answer *a, const void *body, size_t len, int chunked)
{
    a->status = 200;
    a->body = body;
    a->len = len;
    a->clen = chunked ? -1 : (int64_t)len;
}

static void set_status(fs_answer *a, int status, const char *extra)
{
    a->status = status;
    a->text = 1;
    a->extra = extra;
}

/* 429 and 503 misbehave once per rest path, query ignored. */
static int first_time(fs_faults *st, fs_fault f, const char *target, size_t len, size_t rest_off,
                      fs_answer *a)
{
    size_t q = rest_off;
    int first;

    while (q < len && target[q] != '?')
        q++;
    first = fs_fault_seen_first(st->seen, f, target + rest_off, q - rest_off);
    if (first == 0)
        return FS_FAULT_SERVE; /* seen before: serve normally */
    set_status(a, first < 0 ? 500 : (f == FS_FAULT_429 ? 429 : 503), "Retry-After: 1\r\n");
    return FS_FAULT_ANSWERED;
}

int fs_fault_answer(fs_faults *st, fs_fault f, const char *target, size_t len, size_t rest_off,
                    const char *ctype, fs_answer *a)
{
    int has_rest = rest_off < len && target[rest_off] == '/';

    memset(a, 0, sizeof(*a));
    a->ctype = ctype;
    switch (f) {
    case FS_FAULT_REFUSE:
        a->after = FS_AFTER_REFUSE;
        break;
    case FS_FAULT_BADCHUNK:
        a->extra = "Transfer-Encoding: chunked\r\n";
        a->after = FS_AFTER_CLOSE;
        set_body(a, badchunk_body, sizeof(badchunk_body) - 1, 1);
        break;
    case FS_FAULT_HTML:
        a->ctype = "text/html";
        set_body(a, html_body, sizeof(html_body) - 1, 0);
        break;
    case FS_FAULT_BADGZIP:
        a->extra = "Content-Encoding: gzip\r\n";
        set_body(a, badgzip_body, sizeof(badgzip_body) - 1, 0);
        break;
    case FS_FAULT_ENDLESS:
        a->after = FS_AFTER_ENDLESS;
        set_body(a, NULL, 0, 1);
        break;
    case FS_FAULT_LOOP:
        a->loc = target;
        a->loc_len = len;
        set_status(a, 302, NULL);
        break;
    case FS_FAULT_REDIRECT_FILE:
    case FS_FAULT_REDIRECT_FTP:
        a->loc = f == FS_FAULT_REDIRECT_FILE ? "file:///etc/passwd" : "ftp://127.0.0.1/x";
        a->loc_len = strlen(a->loc);
        set_status(a, 302, NULL);
        break;
    case FS_FAULT_REDIRECT_OK:
        a->loc = has_rest ? target + rest_off : "/";
        a->loc_len = has_rest ? len - rest_off : 1;
        set_status(a, 302, NULL);
        break;
    case FS_FAULT_418:
    case FS_FAULT_500:
        set_status(a, f == FS_FAULT_418 ? 418 : 500, NULL);
        break;
    case FS_FAULT_429:
    case FS_FAULT_503:
        return first_time(st, f, target, len, rest_off, a);
    case FS_FAULT_GZIPBOMB:
    case FS_FAULT_GZIPBOMB_TE:
        if (st->bomb_state == FS_BOMB_BUILDING)
            return FS_FAULT_WAIT;
        if (st->bomb_state != FS_BOMB_READY)
            set_status(a, 500, NULL);
        else if (f == FS_FAULT_GZIPBOMB) {
            a->extra = "Content-Encoding: gzip\r\n";
            set_body(a, st->bomb.data, st->bomb.len, 0);
        } else {
            a->extra = "Transfer-Encoding: gzip, chunked\r\n";
            set_body(a, st->bomb_chunked.data, st->bomb_chunked.len, 1);
        }
        break;
    default:
        return FS_FAULT_SERVE;
    }
    return FS_FAULT_ANSWERED;
}

int fs_fault_shape(const fs_faults *st, fs_fault f, fs_answer *a)
{
    fs_bytes gz;

    switch (f) {
    case FS_FAULT_RESET:
    case FS_FAULT_SHORT:
        a->len /= 2; /* Content-Length still announces the whole file */
        a->after = f == FS_FAULT_RESET ? FS_AFTER_RESET : FS_AFTER_CLOSE;
        return 1;
    case FS_FAULT_SILENCE:
        a->after = FS_AFTER_SILENCE;
        return 1;
    case FS_FAULT_TRICKLE:
        a->after = FS_AFTER_TRICKLE;
        return 1;
    case FS_FAULT_HUGEHEADERS:
        a->extra = st->filler;
        return 1;
    case FS_FAULT_LONGHEADER:
        a->extra = st->longline;
        return 1;
    case FS_FAULT_GZIP:
        if (fs_gz_compress(a->body, a->len, &gz) != 0)
            return -1;
        free(a->owned);
        a->extra = "Content-Encoding: gzip\r\n";
        a->extra2 = NULL; /* the validators belong to the identity encoding */
        a->body = a->owned = gz.data;
        a->len = gz.len;
        a->clen = (int64_t)gz.len;
        return 1;
    default:
        return 0;
    }
}

/* A list: tests ask for a few hundred paths at most. */
typedef struct seen_entry {
    struct seen_entry *next;
    fs_fault fault;
    size_t len;
    char path[];
} seen_entry;

struct fs_fault_seen {
    seen_entry *head;
};

fs_fault_seen *fs_fault_seen_new(void)
{
    return calloc(1, sizeof(fs_fault_seen));
}

int fs_fault_seen_first(fs_fault_seen *set, fs_fault f, const char *path, size_t len)
{
    seen_entry *e;

    for (e = set->head; e != NULL; e = e->next)
        if (e->fault == f && e->len == len && memcmp(e->path, path, len) == 0)
            return 0;
    e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return -1;
    e->fault = f;
    e->len = len;
    memcpy(e->path, path, len);
    e->next = set->head;
    set->head = e;
    return 1;
}

void fs_fault_seen_free(fs_fault_seen *set)
{
    seen_entry *e, *next;

    if (set == NULL)
        return;
    for (e = set->head; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    free(set);
}

/* Threadpool: the bomb takes ~0.2 s of CPU, so it is not built on the loop. */
static void on_bomb_work(uv_work_t *w)
{
    fs_faults *f = w->data;
    fs_strbuf b;
    size_t off;

    if (fs_gz_zeros(BOMB_BYTES, &f->bomb) != 0)
        return;
    fs_strbuf_init(&b);
    for (off = 0; off < f->bomb.len; off += BOMB_CHUNK) {
        size_t n = f->bomb.len - off < BOMB_CHUNK ? f->bomb.len - off : BOMB_CHUNK;

        fs_strbuf_printf(&b, "%zx\r\n", n);
        fs_strbuf_append(&b, f->bomb.data + off, n);
        fs_strbuf_append(&b, "\r\n", 2);
    }
    fs_strbuf_append(&b, "0\r\n\r\n", 5);
    if (b.failed) {
        fs_strbuf_free(&b);
        return;
    }
    f->bomb_chunked.data = (unsigned char *)b.data;
    f->bomb_chunked.len = b.len;
}

static void on_bomb_done(uv_work_t *w, int status)
{
    fs_faults *f = w->data;

    f->bomb_state = status == 0 && f->bomb_chunked.data != NULL ? FS_BOMB_READY : FS_BOMB_NONE;
}

int fs_faults_init(fs_faults *f, uv_loop_t *loop)
{
    size_t i;

    f->seen = fs_fault_seen_new();
    f->filler = malloc(FILLER_LINES * FILLER_LINE + 1);
    f->longline = malloc(FILLER_LINES * FILLER_LINE + 1);
    if (f->seen == NULL || f->filler == NULL || f->longline == NULL)
        return UV_ENOMEM;
    for (i = 0; i < FILLER_LINES; i++) {
        char *line = f->filler + i * FILLER_LINE;
        int n = snprintf(line, FILLER_LINE, "X-Filler-%03zu: ", i);

        memset(line + n, 'x', FILLER_LINE - 2 - (size_t)n);
        line[FILLER_LINE - 2] = '\r';
        line[FILLER_LINE - 1] = '\n';
    }
    f->filler[FILLER_LINES * FILLER_LINE] = '\0';
    /* The same size in one line: past what a client takes in a line (curl:
     * 100 KB), where the filler's lines each pass. */
    size_t n = (size_t)snprintf(f->longline, FILLER_LINE, "X-Long: ");
    memset(f->longline + n, 'x', FILLER_LINES * FILLER_LINE - 2 - n);
    memcpy(f->longline + FILLER_LINES * FILLER_LINE - 2, "\r\n", 3);
    f->bomb_work.data = f;
    if (uv_queue_work(loop, &f->bomb_work, on_bomb_work, on_bomb_done) == 0)
        f->bomb_state = FS_BOMB_BUILDING;
    return 0;
}

void fs_faults_stop(fs_faults *f)
{
    /* Succeeds only if the work has not started; on_bomb_done then runs
     * with UV_ECANCELED. */
    if (f->bomb_state == FS_BOMB_BUILDING)
        (void)uv_cancel((uv_req_t *)&f->bomb_work);
}

void fs_faults_free(fs_faults *f)
{
    fs_fault_seen_free(f->seen);
    free(f->filler);
    free(f->longline);
    free(f->bomb.data);
    free(f->bomb_chunked.data);
    memset(f, 0, sizeof(*f));
}
