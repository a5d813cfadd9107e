namespace SecureChannels.Protocol.Tests.Docs;

/// <summary>Reads the example lines of docs/protocol.md (<c>PREFIX NAME: VALUE</c>) that the tests recompute.</summary>
internal static class ProtocolDocument
{
    public static Dictionary<string, string> ReadExamples(string prefix)
    {
        var path = Path.Combine(RepositoryRoot(), "docs", "protocol.md");
        var marker = prefix + " ";
        return File.ReadLines(path)
            .Where(l => l.StartsWith(marker, StringComparison.Ordinal))
            .Select(l => l[marker.Length..].Split(": ", 2))
            .ToDictionary(p => p[0], p => p[1].Trim(), StringComparer.Ordinal);
    }

    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "SecureChannels.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("No SecureChannels.sln above the test folder.");
    }
}
