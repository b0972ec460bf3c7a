-- household_assets: financial assets and their limit for every accepted household.
-- Inputs: households, params, asset_records. Output: one row per household.
-- SPEC §5.3: limit = S × asset_months[aid_type] × n.
CREATE VIEW household_assets AS
SELECT h.household_id,
       COALESCE(SUM(a.balance), CAST(0 AS DECIMAL(18, 2))) AS assets_total,
       p.standard_monthly * p.asset_months * CAST(h.members AS DECIMAL(10, 0)) AS assets_limit
FROM households h
JOIN params p ON p.household_id = h.household_id
LEFT JOIN asset_records a ON a.household_id = h.household_id
GROUP BY h.household_id, h.members, p.standard_monthly, p.asset_months
