/* pg_copy.c — the baseline of bench/tracking.sh: the least a C program
 * must do to put N metric points into PostgreSQL with libpq: COPY into a
 * table shaped as mlx's metrics table (primary key (run_id, key, step)),
 * one transaction of BATCH rows at a time (mlx's batch size), the same
 * rows mlx logs: KEYS metrics, each with steps 0…N/KEYS-1, of one run.
 *
 * usage: pg_copy URI SCHEMA N KEYS BATCH      prints the seconds it took */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pg_copy: %s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: pg_copy URI SCHEMA N KEYS BATCH\n");
		return 2;
	}
	long n = atol(argv[3]), keys = atol(argv[4]), batch = atol(argv[5]);
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_copy: %s", PQerrorMessage(c));
		return 1;
	}
	char sql[512];
	exec(c, "SET client_min_messages = warning");
	snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", argv[2]);
	exec(c, sql);
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", argv[2]);
	exec(c, sql);
	snprintf(
	    sql, sizeof sql,
	    "CREATE TABLE %s.metrics (run_id text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL,"
	    " step bigint NOT NULL, ts bigint NOT NULL, value double precision,"
	    " PRIMARY KEY (run_id, key, step))",
	    argv[2]);
	exec(c, sql);
	snprintf(sql, sizeof sql, "COPY %s.metrics (run_id, key, step, ts, value) FROM STDIN", argv[2]);
	size_t cap = (size_t)batch * 96 + 96;
	char *buf = malloc(cap);
	double t0 = now();
	for (long i = 0; i < n;) {
		exec(c, "BEGIN");
		PGresult *r = PQexec(c, sql);
		if (PQresultStatus(r) != PGRES_COPY_IN) {
			fprintf(stderr, "pg_copy: %s", PQerrorMessage(c));
			return 1;
		}
		PQclear(r);
		size_t len = 0;
		int64_t ts = now_ms();
		for (long j = 0; j < batch && i < n; j++, i++)
			len += (size_t)snprintf(buf + len, cap - len,
			                        "0123456789abcdef\tmetric%ld\t%ld\t%lld\t%.17g\n", i % keys,
			                        i / keys, (long long)ts, 1.0 / (double)(i + 1));
		if (PQputCopyData(c, buf, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1) {
			fprintf(stderr, "pg_copy: %s", PQerrorMessage(c));
			return 1;
		}
		while ((r = PQgetResult(c)) != NULL) {
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				fprintf(stderr, "pg_copy: %s", PQerrorMessage(c));
				return 1;
			}
			PQclear(r);
		}
		exec(c, "COMMIT");
	}
	printf("%.3f\n", now() - t0);
	free(buf);
	PQfinish(c);
	return 0;
}
