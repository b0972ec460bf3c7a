-- fund_latest: per member housing-fund account (id_number, account_no), the snapshot
-- with the latest as_of on or before D.
-- Inputs: member_params, housing_fund. Output: one row per (household, account).
-- SPEC §5.3: only an account whose latest snapshot is active counts (see 090).
CREATE VIEW fund_latest AS
SELECT household_id, id_number, balance, status, ev_table, ev_file, ev_row
FROM (
    SELECT mp.household_id,
           f.id_number,
           f.balance,
           f.status,
           'housing_fund' AS ev_table,
           f.src_file AS ev_file,
           f.src_row AS ev_row,
           ROW_NUMBER() OVER (
               PARTITION BY mp.household_id, f.id_number, f.account_no
               ORDER BY f.as_of DESC, f.src_file DESC, f.src_row DESC
           ) AS rn
    FROM member_params mp
    JOIN housing_fund f ON f.id_number = mp.id_number
    WHERE f.as_of <= mp.as_of
) latest
WHERE rn = 1
