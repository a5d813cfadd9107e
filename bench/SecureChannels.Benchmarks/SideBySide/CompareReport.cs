using System.Text;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// The markdown document <c>compare</c> writes, built section by section: headings, notes, tables, every goal judged
/// (gathered again in a summary at the top) and every failure (which makes the run's exit code non-zero).
/// </summary>
internal sealed class CompareReport
{
    private readonly StringBuilder _body = new();
    private readonly List<(string What, string Value, string Goal, string Verdict)> _goals = [];
    private readonly List<string> _failures = [];

    public bool Failed => _failures.Count > 0;

    public void Heading(string title) => _body.AppendLine().AppendLine("## " + title).AppendLine();

    /// <summary>A paragraph; each line of <paramref name="lines"/> is one source line of it.</summary>
    public void Note(params string[] lines)
    {
        foreach (var line in lines)
        {
            _body.AppendLine(line);
        }

        _body.AppendLine();
    }

    public void Table(MarkdownTable table)
    {
        table.WriteTo(_body);
        _body.AppendLine();
    }

    /// <summary>Judges <paramref name="value"/> (shown as <paramref name="shown"/>) against <paramref name="goal"/> for the summary, and returns the verdict for the table.</summary>
    public string Judge(string what, Goal goal, double value, string shown)
    {
        var verdict = goal.Verdict(value);
        _goals.Add((what, shown, goal.Text, verdict));
        return verdict;
    }

    /// <summary>Records a section that could not measure; the stack trace goes to the console, the document keeps the causes.</summary>
    public void Fail(string section, Exception error)
    {
        var causes = string.Join(" <- ", Causes(error).Select(e => $"{e.GetType().Name}: {e.Message}"));
        _failures.Add($"{section}: {causes}");
        _body.AppendLine("**FAILED**: " + causes).AppendLine();
    }

    private static IEnumerable<Exception> Causes(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }

    /// <summary>The whole document: <paramref name="header"/>, the summary of goals and failures, then the sections.</summary>
    public string Compose(string header)
    {
        var text = new StringBuilder(header).AppendLine();
        text.AppendLine("## Summary").AppendLine();
        var summary = new MarkdownTable("goal", "measured", "target", "verdict");
        foreach (var (what, value, goal, verdict) in _goals)
        {
            summary.Row(what, value, goal, verdict);
        }

        summary.WriteTo(text);
        text.AppendLine();
        text.AppendLine(BenchText.Invariant($"{_goals.Count(g => g.Verdict == Goal.Met)} of {_goals.Count} goals met."));
        foreach (var failure in _failures)
        {
            text.AppendLine().Append("**FAILED**: ").AppendLine(failure);
        }

        return text.Append(_body).ToString();
    }
}
