"""HTML sections of the report page: each turns computed tables (``report.tables.ReportTables``) into page tables
(``report.cells``) and figures (``report.figkit``). Rendering only: no analysis is computed here."""
