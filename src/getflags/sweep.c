#include "gf/sweep.h"

#include <cjson/cJSON.h>

#include "gf/error.h"

int gf_sweep_row_from(struct gf_sweep_row *row, const struct gf_summary *s)
{
    struct gf_latency l;
    if (gf_latency_summary(s->latencies_ms, s->nlatencies, &l) != 0)
        return GF_ENOMEM;
    *row = (struct gf_sweep_row){
        .m = s->concurrency,
        .elapsed_s = s->elapsed_s,
        .requests_per_s = s->elapsed_s > 0 ? (double)s->requests / s->elapsed_s : 0.0,
        .p50_ms = l.p50,
        .p95_ms = l.p95,
        .p99_ms = l.p99,
        .max_ms = l.max,
        .ok = s->ok,
        .not_found = s->not_found,
        .error = s->error,
        .unchanged = s->unchanged,
        .pending = s->pending,
        .requests = (size_t)s->requests,
        .peak_in_flight = s->peak_in_flight,
        .conn = s->conn,
    };
    return 0;
}

void gf_sweep_table(FILE *f, const struct gf_sweep_row *rows, size_t n)
{
    fprintf(f, "%6s %10s %10s %9s %9s %9s %9s %5s %9s %6s %9s\n", "m", "elapsed_s", "req/s",
            "p50_ms", "p95_ms", "p99_ms", "max_ms", "ok", "not_found", "errors", "unchanged");
    for (size_t i = 0; i < n; i++) {
        const struct gf_sweep_row *r = &rows[i];
        fprintf(f, "%6u %10.3f %10.1f %9.2f %9.2f %9.2f %9.2f %5zu %9zu %6zu %9zu\n", r->m,
                r->elapsed_s, r->requests_per_s, r->p50_ms, r->p95_ms, r->p99_ms, r->max_ms, r->ok,
                r->not_found, r->error, r->unchanged);
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].pending > 0)
            fprintf(f, "m=%u was interrupted: %zu of its %zu codes did not finish.\n", rows[i].m,
                    rows[i].pending,
                    rows[i].ok + rows[i].not_found + rows[i].error + rows[i].unchanged +
                        rows[i].pending);
}

char *gf_sweep_json(const struct gf_sweep_row *rows, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct gf_sweep_row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON *lat = cJSON_CreateObject();
        if (!o || !lat || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(lat);
            cJSON_Delete(arr);
            return NULL;
        }
        int ok = cJSON_AddNumberToObject(o, "m", r->m) &&
                 cJSON_AddNumberToObject(o, "elapsed_s", r->elapsed_s) &&
                 cJSON_AddNumberToObject(o, "requests", (double)r->requests) &&
                 cJSON_AddNumberToObject(o, "requests_per_s", r->requests_per_s) &&
                 cJSON_AddItemToObject(o, "latency_ms", lat);
        if (!ok) {
            cJSON_Delete(lat);
            cJSON_Delete(arr);
            return NULL;
        }
        ok = cJSON_AddNumberToObject(lat, "p50", r->p50_ms) &&
             cJSON_AddNumberToObject(lat, "p95", r->p95_ms) &&
             cJSON_AddNumberToObject(lat, "p99", r->p99_ms) &&
             cJSON_AddNumberToObject(lat, "max", r->max_ms) &&
             cJSON_AddNumberToObject(o, gf_status_name(GF_OK), (double)r->ok) &&
             cJSON_AddNumberToObject(o, gf_status_name(GF_NOT_FOUND), (double)r->not_found) &&
             cJSON_AddNumberToObject(o, gf_status_name(GF_ERROR), (double)r->error) &&
             cJSON_AddNumberToObject(o, gf_status_name(GF_UNCHANGED), (double)r->unchanged) &&
             cJSON_AddNumberToObject(o, gf_status_name(GF_PENDING), (double)r->pending) &&
             cJSON_AddNumberToObject(o, "peak_in_flight", r->peak_in_flight) &&
             gf_report_add_connections(o, &r->conn) == 0;
        if (!ok) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}
