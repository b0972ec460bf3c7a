-- rule_residential_area: residential_area_over_limit.
-- Inputs: held_properties, households, params. Output: flag rows, evidence = held
-- residential rows.
-- SPEC §5.4, review: Σ area_m2 × share over members' held residential rows >
-- max_residential_area_per_capita_m2 × n (exact decimals; co-owners' shares add up).
CREATE VIEW rule_residential_area AS
WITH area AS (
    SELECT household_id, SUM(area_m2 * share) AS area
    FROM held_properties
    WHERE usage = 'residential'
    GROUP BY household_id
)
SELECT a.household_id,
       'residential_area_over_limit' AS rule,
       'review' AS severity,
       CAST(NULL AS VARCHAR) AS member,
       'area' AS unit,
       CAST(a.area AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(p.max_residential_area_per_capita_m2 * CAST(h.members AS DECIMAL(10, 0)) AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       hp.ev_table,
       hp.ev_file,
       hp.ev_row
FROM area a
JOIN households h ON h.household_id = a.household_id
JOIN params p ON p.household_id = a.household_id
JOIN held_properties hp ON hp.household_id = a.household_id AND hp.usage = 'residential'
WHERE a.area > p.max_residential_area_per_capita_m2 * CAST(h.members AS DECIMAL(10, 0))
