"""The DuckDB reference of `cargo bench --bench check`: the job of `hedui check` on a
lake -- verdicts, figures, flags and every flag's evidence records -- done by an analyst
in DuckDB SQL over the same Parquet files, written as JSON Lines in the shape of
`results.jsonl` (SPEC section 7).

It runs the rules of `pipelines/*.sql` unchanged (they are plain SQL; DuckDB reads them as
they are), then builds each household's result -- exact figures rounded half away from
zero, flags sorted by (rule, member), evidence sorted by (table, file, row) and deduplicated,
each record's canonical columns -- in SQL, and writes it with DuckDB's own JSON writer.

Inputs (made by the bench): `--inputs DIR` holds the run's input tables (households,
members, params, ...) as Parquet, built by hedui's library from the applicant batch and
the policy (parsing a GBK batch and the policy is not SQL's job; it takes hedui under a
second), and `DIR/columns.json` the canonical columns of each table with their kind.
The source tables are the files of each source's latest lake snapshot, as listed by its
manifest.

    python duckdb_reference.py --lake LAKE --inputs DIR --pipelines DIR --out FILE
"""

import argparse
import glob
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--pipelines", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()

    import duckdb

    started = time.time()

    def stage(what):
        print(f"stage {time.time() - started:.3f} {what}", file=sys.stderr, flush=True)

    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    con.execute("SET preserve_insertion_order = false")

    # The run's input tables: small, held as tables.
    for path in sorted(glob.glob(os.path.join(a.inputs, "*.parquet"))):
        name = os.path.basename(path)[: -len(".parquet")]
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}')")

    # The source tables: each source's latest snapshot (highest manifest sequence).
    present = set()
    for source_dir in sorted(glob.glob(os.path.join(a.lake, "sources", "*"))):
        manifests = sorted(glob.glob(os.path.join(source_dir, "manifests", "*.json")))
        if not manifests:
            continue
        with open(manifests[-1], encoding="utf-8") as f:
            manifest = json.load(f)
        for t in manifest["tables"]:
            files = [os.path.join(a.lake, p) for p in t["files"]]
            if not files:
                continue
            listed = ", ".join(f"'{p}'" for p in files)
            con.execute(
                f"CREATE VIEW {t['table']} AS SELECT * FROM read_parquet([{listed}])"
            )
            present.add(t["table"])
    with open(os.path.join(a.inputs, "columns.json"), encoding="utf-8") as f:
        columns = json.load(f)
    stage("inputs registered")

    # The rules, as hedui runs them; flag_rows computed once into flags_found.
    for path in sorted(glob.glob(os.path.join(a.pipelines, "*.sql"))):
        with open(path, encoding="utf-8") as f:
            sql = f.read()
        if os.path.basename(path).startswith("910_"):
            con.execute("CREATE TABLE flags_found AS SELECT * FROM flag_rows")
            stage("flags")
        con.execute(sql)

    # Exact figures: a fraction num/den (num a DECIMAL) as a 2-digit string, rounded half
    # away from zero.
    con.execute(
        """
        CREATE MACRO hundredths(num, den) AS (
            WITH q AS (SELECT CAST(round(num * 1000000) AS HUGEINT) AS n,
                              CAST(den AS HUGEINT) * 10000 AS d)
            SELECT sign(n) * ((2 * abs(n) + d) // (2 * d)) FROM q
        )
        """
    )
    con.execute(
        """
        CREATE MACRO money(h) AS
            (CASE WHEN h < 0 THEN '-' ELSE '' END)
            || CAST(abs(h) // 100 AS VARCHAR) || '.' || lpad(CAST(abs(h) % 100 AS VARCHAR), 2, '0')
        """
    )
    con.execute(
        """
        CREATE MACRO figure(unit, num, den, txt) AS CASE
            WHEN unit IN ('money', 'area') AND num IS NOT NULL
                THEN to_json(money(hundredths(num, coalesce(den, 1))))
            WHEN unit = 'count' AND num IS NOT NULL
                THEN to_json(CAST(trunc(num) AS BIGINT))
            WHEN unit = 'text' AND txt IS NOT NULL THEN to_json(txt)
            ELSE 'null'::JSON
        END
        """
    )

    # Evidence: the records the flags rest on, per table, as JSON objects of the
    # canonical columns (decimals as exact strings, dates YYYY-MM-DD, months YYYY-MM).
    def cell(name, kind):
        if kind == "month":
            return f"strftime(t.{name}, '%Y-%m')"
        if kind == "date":
            return f"strftime(t.{name}, '%Y-%m-%d')"
        if kind == "decimal":
            return f"CAST(t.{name} AS VARCHAR)"
        return f"t.{name}"

    parts = []
    for label, spec in columns.items():
        table = spec["table"]
        if table not in present and table != "members":
            continue
        obj = ", ".join(f"'{c}', {cell(c, k)}" for c, k in spec["columns"])
        parts.append(
            f"""SELECT e.ev_table, e.ev_file, e.ev_row, json_object({obj}) AS record
                FROM {table} t
                JOIN (SELECT DISTINCT ev_table, ev_file, ev_row FROM flags_found
                      WHERE ev_table = '{label}') e
                  ON t.src_file = e.ev_file AND t.src_row = e.ev_row"""
        )
    con.execute("CREATE TABLE evidence AS " + " UNION ALL ".join(parts))
    stage("evidence")

    missing = [s for (s,) in con.execute(
        "SELECT source FROM run_sources WHERE status = 'missing' ORDER BY source").fetchall()]
    stale = [s for (s,) in con.execute(
        "SELECT source FROM run_sources WHERE status = 'stale' ORDER BY source").fetchall()]
    con.execute(
        f"""
        COPY (
            WITH refs AS (
                SELECT DISTINCT household_id, rule, member, ev_table, ev_file, ev_row
                FROM flags_found WHERE ev_table IS NOT NULL
            ),
            flag_evidence AS (
                SELECT r.household_id, r.rule, r.member,
                       list({{'table': r.ev_table, 'file': r.ev_file, 'row': r.ev_row,
                              'record': coalesce(e.record, '{{}}'::JSON)}}
                            ORDER BY r.ev_table, r.ev_file, r.ev_row) AS evidence
                FROM refs r
                LEFT JOIN evidence e
                  ON e.ev_table = r.ev_table AND e.ev_file = r.ev_file AND e.ev_row = r.ev_row
                GROUP BY r.household_id, r.rule, r.member
            ),
            flags AS (
                SELECT household_id, rule, member,
                       first(severity) AS severity,
                       first(figure(unit, value_num, value_den, value_text)) AS value,
                       first(figure(unit, limit_num, limit_den, NULL)) AS "limit"
                FROM flags_found
                GROUP BY household_id, rule, member
            ),
            household_flags AS (
                SELECT f.household_id,
                       list({{'rule': f.rule, 'severity': f.severity, 'member': f.member,
                              'value': f.value, 'limit': f."limit",
                              'evidence': coalesce(fe.evidence, [])}}
                            ORDER BY f.rule, f.member NULLS FIRST) AS flags
                FROM flags f
                LEFT JOIN flag_evidence fe
                  ON fe.household_id = f.household_id AND fe.rule = f.rule
                 AND fe.member IS NOT DISTINCT FROM f.member
                GROUP BY f.household_id
            )
            SELECT h.household_id, h.region_code, h.area_type, h.aid_type,
                   r.verdict, r.members,
                   money(hundredths(r.income_total, r.income_den)) AS per_capita_monthly_income,
                   money(hundredths(r.assets_total, 1)) AS financial_assets,
                   money(hundredths(r.standard_monthly, 1)) AS standard_monthly,
                   {json.dumps(missing)}::VARCHAR[] AS missing_sources,
                   {json.dumps(stale)}::VARCHAR[] AS stale_sources,
                   coalesce(hf.flags, []) AS flags
            FROM households h
            JOIN household_results r ON r.household_id = h.household_id
            LEFT JOIN household_flags hf ON hf.household_id = h.household_id
            ORDER BY h.household_id
        ) TO '{a.out}' (FORMAT json)
        """
    )
    stage("results.jsonl written")


if __name__ == "__main__":
    main()
