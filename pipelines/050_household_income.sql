-- household_income: household income over the window and its limit, for every
-- accepted household (also those without any income record).
-- Inputs: households, params, member_income. Output: one row per household.
-- SPEC §5.2: flag when per-capita monthly income > S × income_multiplier, compared on
-- totals: income_total > S × multiplier × n × months (n = declared members).
CREATE VIEW household_income AS
SELECT h.household_id,
       h.members,
       p.income_months,
       COALESCE(SUM(CASE WHEN mi.hr_wage >= mi.tax_wage THEN mi.hr_wage ELSE mi.tax_wage END + mi.other_income),
                CAST(0 AS DECIMAL(18, 2))) AS income_total,
       p.standard_monthly * p.income_multiplier AS income_limit_monthly,
       p.standard_monthly * p.income_multiplier * CAST(h.members AS DECIMAL(10, 0))
           * CAST(p.income_months AS DECIMAL(10, 0)) AS income_limit_total
FROM households h
JOIN params p ON p.household_id = h.household_id
LEFT JOIN member_income mi ON mi.household_id = h.household_id
GROUP BY h.household_id, h.members, p.income_months, p.standard_monthly, p.income_multiplier
