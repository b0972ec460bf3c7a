-- rule_identity: identity flags per member against the police household registry.
-- Inputs: members, residents, present_tables. Output: flag rows (see 900_flag_rows.sql).
-- SPEC §5.1: identity_not_found (not in residents; only when residents was delivered),
-- member_deceased (status deceased), name_mismatch (registered name differs from the
-- declared one, both trimmed and full-width folded at load). A cancelled registration
-- raises none of these. Severity review; member = the normalised id_number.
CREATE VIEW rule_identity AS
SELECT m.household_id,
       'identity_not_found' AS rule,
       'review' AS severity,
       m.id_number AS member,
       'none' AS unit,
       CAST(NULL AS DECIMAL(38, 6)) AS value_num,
       CAST(NULL AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(NULL AS DECIMAL(38, 6)) AS limit_num,
       CAST(NULL AS BIGINT) AS limit_den,
       CAST(NULL AS VARCHAR) AS ev_table,
       CAST(NULL AS VARCHAR) AS ev_file,
       CAST(NULL AS BIGINT) AS ev_row
FROM members m
JOIN present_tables t ON t.table_name = 'residents'
LEFT JOIN (SELECT DISTINCT id_number FROM residents) r ON r.id_number = m.id_number
WHERE r.id_number IS NULL
UNION ALL
SELECT m.household_id,
       'member_deceased',
       'review',
       m.id_number,
       'text',
       CAST(NULL AS DECIMAL(38, 6)),
       CAST(NULL AS BIGINT),
       r.status,
       CAST(NULL AS DECIMAL(38, 6)),
       CAST(NULL AS BIGINT),
       'residents',
       r.src_file,
       r.src_row
FROM members m
JOIN residents r ON r.id_number = m.id_number
WHERE r.status = 'deceased'
UNION ALL
SELECT m.household_id,
       'name_mismatch',
       'review',
       m.id_number,
       'text',
       CAST(NULL AS DECIMAL(38, 6)),
       CAST(NULL AS BIGINT),
       r.name,
       CAST(NULL AS DECIMAL(38, 6)),
       CAST(NULL AS BIGINT),
       'residents',
       r.src_file,
       r.src_row
FROM members m
JOIN residents r ON r.id_number = m.id_number
WHERE r.status <> 'cancelled' AND r.name <> m.name
