-- member_params: every declared member of every accepted household with its
-- household's check date and income window.
-- Inputs: members, params. Output: one row per (household_id, id_number).
-- SPEC §5 (D, the income window: income_months full months before D's month;
-- window_start inclusive, window_end = first day of D's month, exclusive).
CREATE VIEW member_params AS
SELECT m.household_id,
       m.id_number,
       m.name,
       p.as_of,
       p.window_start,
       p.window_end
FROM members m
JOIN params p ON p.household_id = m.household_id
