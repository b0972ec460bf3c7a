-- financial_latest: per member account (id_number, institution, account_no), the
-- snapshot with the latest as_of on or before D; later records are ignored.
-- Inputs: member_params, financial. Output: one row per (household, account).
-- SPEC §5.3. Two snapshots of one account on the same day: the later row delivered wins.
-- How: the records in one order — account by account, each account's latest first —
-- and each account's first row kept (the row whose predecessor is another account).
-- One ordered pass instead of a window per account: the same rows as ROW_NUMBER() = 1
-- over PARTITION BY the account, without the per-partition cost of ~10^5 accounts.
CREATE VIEW financial_latest AS
SELECT household_id, id_number, balance, ev_table, ev_file, ev_row
FROM (
    SELECT mp.household_id,
           f.id_number,
           f.institution,
           f.account_no,
           f.balance,
           'financial' AS ev_table,
           f.src_file AS ev_file,
           f.src_row AS ev_row,
           LAG(mp.household_id) OVER w AS prev_household,
           LAG(f.id_number) OVER w AS prev_id_number,
           LAG(f.institution) OVER w AS prev_institution,
           LAG(f.account_no) OVER w AS prev_account_no
    FROM member_params mp
    JOIN financial f ON f.id_number = mp.id_number
    WHERE f.as_of <= mp.as_of
    WINDOW w AS (ORDER BY mp.household_id, f.id_number, f.institution, f.account_no,
                          f.as_of DESC, f.src_file DESC, f.src_row DESC)
) ordered
WHERE NOT ((prev_household IS NOT DISTINCT FROM household_id)
           AND (prev_id_number IS NOT DISTINCT FROM id_number)
           AND (prev_institution IS NOT DISTINCT FROM institution)
           AND (prev_account_no IS NOT DISTINCT FROM account_no))
