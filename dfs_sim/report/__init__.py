"""Reports: the summary dict (stable JSON) and its table/CSV renderings."""
