-- rule_commercial: commercial_property — a member holds a commercial property on D.
-- Inputs: held_properties, params. Output: flag rows, evidence = held commercial rows.
-- SPEC §5.4: disqualifying when the region's commercial_property_disqualifies, else
-- review. value = distinct commercial certificates held, limit = 0.
CREATE VIEW rule_commercial AS
WITH shops AS (
    SELECT household_id, COUNT(DISTINCT cert_no) AS shops
    FROM held_properties
    WHERE usage = 'commercial'
    GROUP BY household_id
)
SELECT s.household_id,
       'commercial_property' AS rule,
       CASE WHEN p.commercial_property_disqualifies THEN 'disqualifying' ELSE 'review' END AS severity,
       CAST(NULL AS VARCHAR) AS member,
       'count' AS unit,
       CAST(s.shops AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(0 AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       hp.ev_table,
       hp.ev_file,
       hp.ev_row
FROM shops s
JOIN params p ON p.household_id = s.household_id
JOIN held_properties hp ON hp.household_id = s.household_id AND hp.usage = 'commercial'
