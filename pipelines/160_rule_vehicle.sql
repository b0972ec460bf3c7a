-- rule_vehicle: vehicle_owned — a member holds a non-exempt vehicle worth more than
-- the limit on D.
-- Inputs: member_params, vehicles, params, param_exempt_vehicle_types. Output: flag
-- rows, evidence = the qualifying vehicles.
-- SPEC §5.5, disqualifying: held when registered_on <= D and (scrapped_on empty or > D);
-- value = the highest qualifying value, limit = vehicle_value_limit.
CREATE VIEW rule_vehicle AS
WITH cars AS (
    SELECT mp.household_id, v.value, v.src_file, v.src_row, p.vehicle_value_limit
    FROM member_params mp
    JOIN vehicles v ON v.id_number = mp.id_number
    JOIN params p ON p.household_id = mp.household_id
    LEFT JOIN param_exempt_vehicle_types x
           ON x.household_id = mp.household_id AND x.vehicle_type = v.vehicle_type
    WHERE v.registered_on <= mp.as_of
      AND (v.scrapped_on IS NULL OR v.scrapped_on > mp.as_of)
      AND x.vehicle_type IS NULL
      AND v.value > p.vehicle_value_limit
)
SELECT household_id,
       'vehicle_owned' AS rule,
       'disqualifying' AS severity,
       CAST(NULL AS VARCHAR) AS member,
       'money' AS unit,
       CAST(MAX(value) OVER (PARTITION BY household_id) AS DECIMAL(38, 6)) AS value_num,
       CAST(1 AS BIGINT) AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(vehicle_value_limit AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       'vehicles' AS ev_table,
       src_file AS ev_file,
       src_row AS ev_row
FROM cars
