package export_test

import (
	"context"
	"encoding/csv"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/net/html"

	"github.com/registrywatch/registrywatch/internal/export"
	"github.com/registrywatch/registrywatch/internal/export/exporttest"
	"github.com/registrywatch/registrywatch/internal/ledger"
)

var numericColumns = map[string]bool{"ledger_seq": true, "superseded_by": true, "duration_min_ms": true, "duration_max_ms": true, "objective_ms": true}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestXLSXEqualsCSV reads population.xlsx back: the same cells as
// population.csv, numbers as numbers, text as text, a frozen header row and
// an autofilter.
func TestXLSXEqualsCSV(t *testing.T) {
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, append([]string{"fraud", "churn"}, exporttest.Hostile...)...)
	bundle, _ := run(t, path, k, exporttest.Day(0, 0), exporttest.Day(8, 0), nil)
	recs := readCSV(t, filepath.Join(bundle, export.FilePopulation))
	if len(recs) != 1+4*8 {
		t.Fatalf("population.csv has %d lines", len(recs))
	}
	f, err := excelize.OpenFile(filepath.Join(bundle, export.FileXLSX))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sheets := f.GetSheetList(); len(sheets) != 1 || sheets[0] != "population" {
		t.Fatalf("sheets %v", sheets)
	}
	rows, err := f.GetRows("population", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(recs) {
		t.Fatalf("xlsx has %d rows, csv %d", len(rows), len(recs))
	}
	numbers := 0
	for i, rec := range recs {
		row := rows[i]
		for len(row) < len(rec) {
			row = append(row, "")
		}
		for j, want := range rec {
			if row[j] != want {
				t.Errorf("row %d column %s: xlsx %q, csv %q", i+1, recs[0][j], row[j], want)
			}
			if i == 0 || want == "" {
				continue
			}
			ref, _ := excelize.CoordinatesToCellName(j+1, i+1)
			typ, err := f.GetCellType("population", ref)
			if err != nil {
				t.Fatal(err)
			}
			isText := typ == excelize.CellTypeInlineString || typ == excelize.CellTypeSharedString
			if numericColumns[recs[0][j]] {
				if _, err := strconv.ParseInt(want, 10, 64); err != nil || isText {
					t.Errorf("%s (%s = %q) is not a number cell (type %v)", ref, recs[0][j], want, typ)
				}
				numbers++
			} else if !isText {
				t.Errorf("%s (%s = %q) is not a text cell (type %v)", ref, recs[0][j], want, typ)
			}
			if formula, _ := f.GetCellFormula("population", ref); formula != "" {
				t.Errorf("%s holds a formula %q", ref, formula)
			}
		}
	}
	if numbers < 2*(len(recs)-1) {
		t.Errorf("only %d number cells", numbers)
	}
	panes, err := f.GetPanes("population")
	if err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("panes %+v %v: want the header row frozen", panes, err)
	}
	var filter bool
	for _, dn := range f.GetDefinedName() {
		filter = filter || dn.Name == "_xlnm._FilterDatabase" && strings.Contains(dn.RefersTo, "$A$1:$S$33")
	}
	if !filter {
		t.Errorf("no autofilter over A1:S33: %+v", f.GetDefinedName())
	}
}

// TestHostileNames checks that registry text built to attack a CSV, a
// spreadsheet or a web page is inert in all three.
func TestHostileNames(t *testing.T) {
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, exporttest.Hostile...)
	bundle, _ := run(t, path, k, exporttest.Day(0, 0), exporttest.Day(8, 0), nil)
	verify(t, bundle, k.pub)

	// CSV: every file's text cells start with none of = + - @ TAB CR.
	for _, name := range []string{export.FilePopulation, export.FileExceptions, export.FileHistory, export.FileInventory, export.FileCoverage} {
		recs := readCSV(t, filepath.Join(bundle, name))
		for i, rec := range recs[1:] {
			for j, v := range rec {
				if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
					t.Errorf("%s line %d column %s starts a formula: %q", name, i+2, recs[0][j], v)
				}
			}
		}
	}
	models := map[string]bool{}
	for _, rec := range readCSV(t, filepath.Join(bundle, export.FilePopulation))[1:] {
		models[rec[3]] = true
	}
	for _, want := range []string{`<script>alert(1)</script>`, `'=HYPERLINK("http://x")`, "'\tleading-tab", `'+cmd|' /C calc'!A0`, `'@SUM(1+1)`, `'-2+3`} {
		if !models[want] {
			t.Errorf("population.csv has no model cell %q: %v", want, models)
		}
	}

	// XLSX: the same neutralized text, and no formula anywhere.
	f, err := excelize.OpenFile(filepath.Join(bundle, export.FileXLSX))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _ := f.GetRows("population")
	for i, row := range rows {
		for j, v := range row {
			ref, _ := excelize.CoordinatesToCellName(j+1, i+1)
			if formula, _ := f.GetCellFormula("population", ref); formula != "" {
				t.Errorf("%s holds a formula %q", ref, formula)
			}
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				t.Errorf("%s starts a formula: %q", ref, v)
			}
		}
	}

	// HTML: no element or attribute comes from registry text.
	page, err := os.ReadFile(filepath.Join(bundle, export.FileReport))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(string(page), "=HYPERLINK(&#34;http://x&#34;)") {
		t.Errorf("report.html does not show the hostile names as text")
	}
	z := html.NewTokenizer(strings.NewReader(string(page)))
	allowed := map[string]bool{"html": true, "head": true, "meta": true, "title": true, "style": true, "body": true, "main": true,
		"h1": true, "h2": true, "h3": true, "p": true, "span": true, "b": true, "div": true, "table": true, "tr": true, "th": true, "td": true,
		"svg": true, "rect": true, "text": true, "line": true, "circle": true, "polygon": true}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		name, hasAttr := z.TagName()
		if !allowed[string(name)] {
			t.Errorf("report.html has a <%s> element", name)
		}
		for hasAttr {
			var key, val []byte
			key, val, hasAttr = z.TagAttr()
			k := string(key)
			if strings.HasPrefix(k, "on") || k == "href" || k == "src" || strings.Contains(string(val), "javascript:") {
				t.Errorf("report.html has attribute %s=%q", k, val)
			}
		}
	}
}

// TestLongReportRenders opens report.html in headless Chromium and checks
// that the screenshot is not blank.
func TestLongReportRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed")
	}
	k := newKey(t, ledger.KeyTypeEd25519)
	path, _ := storyLedger(t, k, "fraud", "churn", `<script>alert(1)</script>`)
	bundle, _ := run(t, path, k, exporttest.Day(0, 0), exporttest.Day(8, 0), nil)
	shot := filepath.Join(t.TempDir(), "report.png")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--screenshot="+shot, "--window-size=1280,2000", "file://"+filepath.Join(bundle, export.FileReport))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The variance of the pixels' luminance, and how many are not
	// background: a blank page has neither.
	var n, sum, sq float64
	colored := 0
	bg := img.At(0, 0)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			c := img.At(x, y)
			r, g, bl, _ := c.RGBA()
			l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 65535
			n, sum, sq = n+1, sum+l, sq+l*l
			if c != bg {
				colored++
			}
		}
	}
	variance := sq/n - (sum/n)*(sum/n)
	if b.Dx() < 1000 || variance < 0.002 || float64(colored)/n < 0.05 {
		t.Errorf("the screenshot looks blank: %dx%d, luminance variance %.5f, %.1f%% not background", b.Dx(), b.Dy(), variance, 100*float64(colored)/n)
	}
	t.Logf("screenshot %dx%d, luminance variance %.4f, %.1f%% not background", b.Dx(), b.Dy(), variance, 100*float64(colored)/n)
}
