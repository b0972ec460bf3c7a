-- member_income: per member, the wage totals reported by hr and by tax over the
-- window, the other (non-excluded) income, and how many wage records (hr or tax) the
-- window holds (170: a member without any).
-- Inputs: income_records. Output: one row per member with any income record.
-- SPEC §5.2: wage = max(hr wage, tax wage) — the same salary is never counted twice.
CREATE VIEW member_income AS
SELECT household_id,
       id_number,
       SUM(CASE WHEN part = 'hr_wage' THEN amount ELSE CAST(0 AS DECIMAL(18, 2)) END) AS hr_wage,
       SUM(CASE WHEN part = 'tax_wage' THEN amount ELSE CAST(0 AS DECIMAL(18, 2)) END) AS tax_wage,
       SUM(CASE WHEN part = 'other' THEN amount ELSE CAST(0 AS DECIMAL(18, 2)) END) AS other_income,
       COUNT(CASE WHEN part IN ('hr_wage', 'tax_wage') THEN 1 END) AS wage_records
FROM income_records
GROUP BY household_id, id_number
