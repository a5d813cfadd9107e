namespace SecureChannels.Conformance;

/// <summary>
/// Finds the community Noise vectors: the folder named by <c>NOISE_VECTORS_DIR</c>, else
/// <c>../shared/noise-vectors</c> beside the repository (the checkout that holds <c>SecureChannels.sln</c>).
/// </summary>
public static class NoiseVectorsFolder
{
    /// <summary>The environment variable that overrides the folder.</summary>
    public const string EnvironmentVariable = "NOISE_VECTORS_DIR";

    /// <summary>The folder's path, searching upwards from <paramref name="start"/> (the app's folder by default).</summary>
    /// <exception cref="DirectoryNotFoundException">Neither the variable nor the repository layout leads to a folder.</exception>
    public static string Locate(string? start = null)
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } overridden)
        {
            return Directory.Exists(overridden)
                ? overridden
                : throw new DirectoryNotFoundException($"{EnvironmentVariable} names '{overridden}', which does not exist.");
        }

        for (var directory = new DirectoryInfo(start ?? AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "SecureChannels.sln")))
            {
                var candidate = Path.GetFullPath(Path.Combine(directory.FullName, "..", "shared", "noise-vectors"));
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new DirectoryNotFoundException($"No Noise vectors found: set {EnvironmentVariable} or place them at ../shared/noise-vectors beside the repository.");
    }
}
