-- financial_latest: per member account (id_number, institution, account_no), the
-- snapshot with the latest as_of on or before D; later records are ignored.
-- Inputs: member_params, financial. Output: one row per (household, account).
-- SPEC §5.3. Two snapshots of one account on the same day: the later row delivered wins.
CREATE VIEW financial_latest AS
SELECT household_id, id_number, balance, ev_table, ev_file, ev_row
FROM (
    SELECT mp.household_id,
           f.id_number,
           f.balance,
           'financial' AS ev_table,
           f.src_file AS ev_file,
           f.src_row AS ev_row,
           ROW_NUMBER() OVER (
               PARTITION BY mp.household_id, f.id_number, f.institution, f.account_no
               ORDER BY f.as_of DESC, f.src_file DESC, f.src_row DESC
           ) AS rn
    FROM member_params mp
    JOIN financial f ON f.id_number = mp.id_number
    WHERE f.as_of <= mp.as_of
) latest
WHERE rn = 1
