-- flag_rows: every flag of every rule, one row per (flag, evidence record).
-- Inputs: the rule_* views. Output columns: household_id, rule, severity, member
-- (id_number or NULL), unit (money | count | area | text | none), value_num/value_den
-- and limit_num/limit_den (exact fractions, rounded only for display), value_text,
-- ev_table/ev_file/ev_row (the source record, NULL when a flag rests on none).
-- SPEC §5, §7.
CREATE VIEW flag_rows AS
SELECT * FROM rule_identity
UNION ALL SELECT * FROM rule_income
UNION ALL SELECT * FROM rule_financial_assets
UNION ALL SELECT * FROM rule_residential_count
UNION ALL SELECT * FROM rule_commercial
UNION ALL SELECT * FROM rule_residential_area
UNION ALL SELECT * FROM rule_vehicle
UNION ALL SELECT * FROM rule_undeclared_employment
UNION ALL SELECT * FROM rule_multiple_households
