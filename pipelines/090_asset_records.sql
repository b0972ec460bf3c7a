-- asset_records: the balances counted as the household's financial assets.
-- Inputs: financial_latest, fund_latest, params. Output: one row per counted account.
-- SPEC §5.3: every account's latest balance, plus — where the region sets
-- count_housing_fund_as_asset — each fund account whose latest snapshot is active.
CREATE VIEW asset_records AS
SELECT household_id, id_number, balance, ev_table, ev_file, ev_row
FROM financial_latest
UNION ALL
SELECT f.household_id, f.id_number, f.balance, f.ev_table, f.ev_file, f.ev_row
FROM fund_latest f
JOIN params p ON p.household_id = f.household_id
WHERE f.status = 'active' AND p.count_housing_fund_as_asset
