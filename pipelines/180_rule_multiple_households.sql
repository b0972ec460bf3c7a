-- rule_multiple_households: member_in_multiple_households — one person declared in
-- two or more accepted households of the batch; every such household is flagged.
-- Inputs: members. Output: flag rows, evidence = the person's applicant rows.
-- SPEC §5.6, review, per member; value = number of households, limit = 1.
CREATE VIEW rule_multiple_households AS
WITH dup AS (
    SELECT id_number, COUNT(DISTINCT household_id) AS households
    FROM members
    GROUP BY id_number
    HAVING COUNT(DISTINCT household_id) > 1
)
SELECT m.household_id,
       'member_in_multiple_households' AS rule,
       'review' AS severity,
       m.id_number AS member,
       'count' AS unit,
       CAST(d.households AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(1 AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       'applicants' AS ev_table,
       a.src_file AS ev_file,
       a.src_row AS ev_row
FROM members m
JOIN dup d ON d.id_number = m.id_number
JOIN members a ON a.id_number = m.id_number
