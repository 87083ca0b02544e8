package loadgen

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH                 = 860, 500
	plotL, plotR, plotT, plotB     = 80, 680, 50, 440
	chartPoints                    = 240
	chartMaxNines, chartMinNines   = 6, 2
	chartFont                      = `font-family="sans-serif" font-size="12"`
	chartTitleFont                 = `font-family="sans-serif" font-size="14"`
	chartAxisColor, chartGridColor = "#333", "#ddd"
)

var chartColors = []string{"#000000", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// WriteChart writes the latency distribution of the run as an SVG
// percentile plot: latency (log scale) against the percentile (0%, 90%,
// 99%, 99.9%, ... evenly spaced), one line overall and one per kind. It
// needs the histograms of a run: a Report decoded from JSON has none.
func (r *Report) WriteChart(w io.Writer) error {
	if r.all == nil {
		return errors.New("loadgen: chart: the report holds no latency histograms")
	}
	type series struct {
		name string
		h    *hdrhistogram.Histogram
	}
	all := []series{{"all", r.all}}
	for i, k := range r.Kinds {
		if r.hists[i].TotalCount() > 0 {
			all = append(all, series{k.Kind, r.hists[i]})
		}
	}
	// X: the number of nines the sample count resolves.
	nines := chartMinNines
	if n := r.all.TotalCount(); n > 0 {
		nines = min(max(int(math.Floor(math.Log10(float64(n)))), chartMinNines), chartMaxNines)
	}
	// Y: whole decades around every value plotted.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range all {
		if s.h.TotalCount() == 0 {
			continue
		}
		lo = math.Min(lo, float64(max(s.h.Min(), 1)))
		hi = math.Max(hi, float64(max(s.h.Max(), 1)))
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1e3, 1e6
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	px := func(x float64) float64 { return plotL + (plotR-plotL)*x/float64(nines) }
	py := func(ns float64) float64 {
		return plotB - (plotB-plotT)*(math.Log10(math.Max(ns, 1))-ylo)/(yhi-ylo)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", chartW, chartH)
	title := fmt.Sprintf("verifybench: %s %s, %d connections × depth %d, %d requests in %s",
		r.Transport, r.Target, r.Conns, r.Depth, r.Requests, fmtSeconds(r.Seconds))
	fmt.Fprintf(&b, `<text x="%d" y="28" %s>%s</text>`+"\n", plotL, chartTitleFont, escape(title))
	// Grid and axes.
	for d := ylo; d <= yhi; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", plotL, y, plotR, y, chartGridColor)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`+"\n", plotL-6, y+4, chartFont, escape(fmtDuration(time.Duration(math.Pow(10, d)))))
	}
	for x := 0; x <= nines; x++ {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", px(float64(x)), plotT, px(float64(x)), plotB, chartGridColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`+"\n", px(float64(x)), plotB+18, chartFont, percentileLabel(x))
	}
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" fill="none" stroke="%s"/>`+"\n", plotL, plotT, plotB, plotR, chartAxisColor)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" %s>percentile</text>`+"\n", (plotL+plotR)/2, plotB+40, chartFont)
	fmt.Fprintf(&b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)" %s>latency</text>`+"\n", (plotT+plotB)/2, (plotT+plotB)/2, chartFont)
	// One line per series, and the legend.
	for i, s := range all {
		color := chartColors[i%len(chartColors)]
		if s.h.TotalCount() > 0 {
			var pts []string
			for j := 0; j <= chartPoints; j++ {
				x := float64(nines) * float64(j) / chartPoints
				q := 100 * (1 - math.Pow(10, -x))
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(float64(s.h.ValueAtQuantile(q)))))
			}
			width := 1.5
			if i == 0 {
				width = 2.5
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" points="%s"/>`+"\n", color, width, strings.Join(pts, " "))
		}
		ly := plotT + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"/>`+"\n", plotR+20, ly, plotR+44, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s>%s</text>`+"\n", plotR+50, ly+4, chartFont, escape(s.name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// percentileLabel returns the label of x nines: 0%, 90%, 99%, 99.9%, ...
func percentileLabel(x int) string {
	switch x {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", x-2) + "%"
}

// escape returns s escaped for XML text.
func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
