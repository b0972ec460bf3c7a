-- held_properties: the property rows members hold on D.
-- Inputs: member_params, property. Output: one row per (household, property row).
-- SPEC §5.4: held when registered_on <= D and (cancelled_on empty or > D).
CREATE VIEW held_properties AS
SELECT mp.household_id,
       pr.id_number,
       pr.cert_no,
       pr.usage,
       pr.area_m2,
       pr.share,
       'property' AS ev_table,
       pr.src_file AS ev_file,
       pr.src_row AS ev_row
FROM member_params mp
JOIN property pr ON pr.id_number = mp.id_number
WHERE pr.registered_on <= mp.as_of
  AND (pr.cancelled_on IS NULL OR pr.cancelled_on > mp.as_of)
