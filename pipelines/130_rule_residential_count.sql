-- rule_residential_count: residential_properties_over_limit.
-- Inputs: held_properties, params. Output: flag rows, evidence = held residential rows.
-- SPEC §5.4, disqualifying: distinct residential cert_no held by any member (a home
-- co-owned by two members counts once) > max_residential_properties.
CREATE VIEW rule_residential_count AS
WITH homes AS (
    SELECT household_id, COUNT(DISTINCT cert_no) AS homes
    FROM held_properties
    WHERE usage = 'residential'
    GROUP BY household_id
)
SELECT c.household_id,
       'residential_properties_over_limit' AS rule,
       'disqualifying' AS severity,
       CAST(NULL AS VARCHAR) AS member,
       'count' AS unit,
       CAST(c.homes AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(p.max_residential_properties AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       hp.ev_table,
       hp.ev_file,
       hp.ev_row
FROM homes c
JOIN params p ON p.household_id = c.household_id
JOIN held_properties hp ON hp.household_id = c.household_id AND hp.usage = 'residential'
WHERE c.homes > p.max_residential_properties
