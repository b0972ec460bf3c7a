-- rule_undeclared_employment: a member whose housing fund is being paid into but who
-- has no wage record at all in the income window.
-- Inputs: member_params, housing_fund, member_income, present_tables. Output: flag
-- rows, evidence = the qualifying fund records.
-- SPEC §5.6, review, per member: a housing_fund record with status active,
-- monthly_deposit > 0 and as_of in [window start, D], and no hr wage / tax wage record
-- with a period in the window. Runs only when housing_fund and both wage tables
-- (hr_income, tax_income) were delivered: "no wage record at all" can only be
-- established from both departments, and absent data is not evidence of no wage.
-- value = the highest qualifying monthly deposit.
CREATE VIEW rule_undeclared_employment AS
WITH wage_earners AS (
    SELECT household_id, id_number
    FROM member_income
    WHERE wage_records > 0
),
wage_tables AS (
    SELECT COUNT(*) AS delivered
    FROM present_tables
    WHERE table_name IN ('hr_income', 'tax_income')
),
deposits AS (
    SELECT mp.household_id, mp.id_number, f.monthly_deposit, f.src_file, f.src_row
    FROM member_params mp
    JOIN present_tables t ON t.table_name = 'housing_fund'
    CROSS JOIN wage_tables w
    JOIN housing_fund f ON f.id_number = mp.id_number
    LEFT JOIN wage_earners we ON we.household_id = mp.household_id AND we.id_number = mp.id_number
    WHERE w.delivered = 2
      AND f.status = 'active'
      AND f.monthly_deposit > 0
      AND f.as_of >= mp.window_start
      AND f.as_of <= mp.as_of
      AND we.id_number IS NULL
)
SELECT household_id,
       'undeclared_employment' AS rule,
       'review' AS severity,
       id_number AS member,
       'money' AS unit,
       CAST(MAX(monthly_deposit) OVER (PARTITION BY household_id, id_number) AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(NULL AS DECIMAL(38, 6)) AS limit_num,
       CAST(NULL AS BIGINT) AS limit_den,
       'housing_fund' AS ev_table,
       src_file AS ev_file,
       src_row AS ev_row
FROM deposits
