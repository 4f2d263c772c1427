-- 0061: validates 0060's wider status check, under a lock that lets charges keep flowing.
ALTER TABLE charges VALIDATE CONSTRAINT charges_status_check;
