-- rule_financial_assets: financial_assets_over_limit with the counted balances as evidence.
-- Inputs: household_assets, asset_records. Output: flag rows.
-- SPEC §5.3, severity disqualifying: assets > S × asset_months × n (exactly at the
-- limit is not over).
CREATE VIEW rule_financial_assets AS
SELECT ha.household_id,
       'financial_assets_over_limit' AS rule,
       'disqualifying' AS severity,
       CAST(NULL AS VARCHAR) AS member,
       'money' AS unit,
       CAST(ha.assets_total AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(ha.assets_limit AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       a.ev_table,
       a.ev_file,
       a.ev_row
FROM household_assets ha
JOIN asset_records a ON a.household_id = ha.household_id
WHERE ha.assets_total > ha.assets_limit
