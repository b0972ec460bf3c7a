-- fund_latest: per member housing-fund account (id_number, account_no), the snapshot
-- with the latest as_of on or before D.
-- Inputs: member_params, housing_fund. Output: one row per (household, account).
-- SPEC §5.3: only an account whose latest snapshot is active counts (see 090).
-- How: as financial_latest (070), each account's first row in one ordered pass.
CREATE VIEW fund_latest AS
SELECT household_id, id_number, balance, status, ev_table, ev_file, ev_row
FROM (
    SELECT mp.household_id,
           f.id_number,
           f.account_no,
           f.balance,
           f.status,
           'housing_fund' AS ev_table,
           f.src_file AS ev_file,
           f.src_row AS ev_row,
           LAG(mp.household_id) OVER w AS prev_household,
           LAG(f.id_number) OVER w AS prev_id_number,
           LAG(f.account_no) OVER w AS prev_account_no
    FROM member_params mp
    JOIN housing_fund f ON f.id_number = mp.id_number
    WHERE f.as_of <= mp.as_of
    WINDOW w AS (ORDER BY mp.household_id, f.id_number, f.account_no,
                          f.as_of DESC, f.src_file DESC, f.src_row DESC)
) ordered
WHERE NOT ((prev_household IS NOT DISTINCT FROM household_id)
           AND (prev_id_number IS NOT DISTINCT FROM id_number)
           AND (prev_account_no IS NOT DISTINCT FROM account_no))
