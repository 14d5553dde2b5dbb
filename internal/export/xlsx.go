package export

import (
	"archive/zip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/xuri/excelize/v2"
)

// sheetName is the worksheet of population.xlsx.
const sheetName = "population"

// writeXLSX writes population.xlsx from population.csv: the same cells,
// numbers as numbers, a frozen header row and an autofilter. The sheet is
// streamed (excelize keeps at most 16 MB of it in memory, then uses a
// temporary file) and so is the zip.
func writeXLSX(csvPath string, w io.Writer) error {
	rows, err := countCSVRows(csvPath)
	if err != nil {
		return err
	}
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", sheetName); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	last, err := excelize.CoordinatesToCellName(len(populationColumns), max(rows, 1))
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	// The autofilter is set before streaming: the stream writer keeps it.
	if err := f.AutoFilter(sheetName, "A1:"+last, nil); err != nil {
		return fmt.Errorf("xlsx autofilter: %w", err)
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	sw, err := f.NewStreamWriter(sheetName)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("xlsx panes: %w", err)
	}
	for i, c := range populationColumns {
		width := 14.0
		switch c {
		case "leaf_hash":
			width = 24
		case "from", "to", "approved_at":
			width = 26
		case "model", "promoter", "approver":
			width = 22
		}
		if err := sw.SetColWidth(i+1, i+1, width); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	in, err := os.Open(csvPath)
	if err != nil {
		return err
	}
	defer in.Close()
	r := csv.NewReader(in)
	r.ReuseRecord = true
	values := make([]any, len(populationColumns))
	for n := 1; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("xlsx: read %s: %w", FilePopulation, err)
		}
		if len(rec) != len(populationColumns) {
			return fmt.Errorf("xlsx: %s line %d has %d columns", FilePopulation, n, len(rec))
		}
		for i, v := range rec {
			values[i] = xlsxValue(populationColumns[i], v, n == 1, bold)
		}
		if err := sw.SetRow("A"+strconv.Itoa(n), values); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	// excelize builds the whole file in a buffer before writing it; handing
	// it a zip writer on w streams it instead (the buffer stays empty).
	zw := zip.NewWriter(w)
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zw })
	if err := f.Write(io.Discard); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

// xlsxValue is the cell of one CSV value: a bold header, an integer in a
// numeric column, text otherwise (already neutralized by cell), nothing
// for an empty value.
func xlsxValue(column, v string, header bool, bold int) any {
	switch {
	case header:
		return excelize.Cell{StyleID: bold, Value: v}
	case v == "":
		return nil
	case populationNumeric[column]:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return v
}

func countCSVRows(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	n := 0
	for {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", FilePopulation, err)
		}
		n++
	}
}

// compareXLSX checks that population.xlsx holds exactly the cells of
// population.csv. It names the first row that differs.
func compareXLSX(xlsx io.Reader, csvFile io.Reader) error {
	f, err := excelize.OpenReader(xlsx)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	rows, err := f.Rows(sheetName)
	if err != nil {
		return fmt.Errorf("sheet %q: %w", sheetName, err)
	}
	defer rows.Close()
	r := csv.NewReader(csvFile)
	r.ReuseRecord = true
	for n := 1; ; n++ {
		rec, cerr := r.Read()
		more := rows.Next()
		if errors.Is(cerr, io.EOF) {
			if more {
				return fmt.Errorf("row %d is not in %s", n, FilePopulation)
			}
			return rows.Error()
		}
		if cerr != nil {
			return fmt.Errorf("read %s: %w", FilePopulation, cerr)
		}
		if !more {
			return fmt.Errorf("row %d of %s is missing", n, FilePopulation)
		}
		cols, err := rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return fmt.Errorf("row %d: %w", n, err)
		}
		for len(cols) < len(rec) {
			cols = append(cols, "")
		}
		if len(cols) != len(rec) {
			return fmt.Errorf("row %d has %d cells, %s has %d", n, len(cols), FilePopulation, len(rec))
		}
		for i := range rec {
			if cols[i] != rec[i] {
				return fmt.Errorf("row %d column %s is %q, %s says %q", n, populationColumns[i], cols[i], FilePopulation, rec[i])
			}
		}
	}
}
