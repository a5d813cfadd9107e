using System.Text;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// A markdown table with its columns padded to a common width, so it reads as well in a terminal as rendered: the
/// first column (what the row is) left-aligned, the figures right-aligned.
/// </summary>
internal sealed class MarkdownTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public MarkdownTable Row(params string[] cells)
    {
        if (cells.Length != headers.Length)
        {
            throw new ArgumentException($"A row of {cells.Length} cells in a table of {headers.Length} columns.", nameof(cells));
        }

        _rows.Add([.. cells.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))]);
        return this;
    }

    public void WriteTo(StringBuilder text)
    {
        var widths = headers.Select((h, i) => Math.Max(3, _rows.Select(r => r[i].Length).Append(h.Length).Max())).ToArray();
        Line(text, headers, widths);
        text.Append('|');
        for (var i = 0; i < widths.Length; i++)
        {
            text.Append(i == 0 ? ' ' + new string('-', widths[i]) + " |" : ' ' + new string('-', widths[i] - 1) + ": |");
        }

        text.AppendLine();
        foreach (var row in _rows)
        {
            Line(text, row, widths);
        }
    }

    private static void Line(StringBuilder text, string[] cells, int[] widths)
    {
        text.Append('|');
        for (var i = 0; i < cells.Length; i++)
        {
            text.Append(' ').Append(i == 0 ? cells[i].PadRight(widths[i]) : cells[i].PadLeft(widths[i])).Append(" |");
        }

        text.AppendLine();
    }
}
