using System.Text;

namespace Embedding.Generators.Helpers
{
    /// <summary>Builds C# text with four-space indentation and '\n' line ends on every platform.</summary>
    internal sealed class SourceWriter
    {
        private readonly StringBuilder _text = new StringBuilder();
        private int _indent;

        public void Line(string line = "")
        {
            if (line.Length > 0)
            {
                _text.Append(' ', _indent * 4);
                _text.Append(line);
            }

            _text.Append('\n');
        }

        /// <summary>Writes <paramref name="header"/> and an opening brace, and indents until <see cref="Close"/>.</summary>
        public void Open(string header)
        {
            Line(header);
            Line("{");
            _indent++;
        }

        /// <summary>Writes a bare opening brace (a scope of its own) and indents until <see cref="Close"/>.</summary>
        public void OpenScope()
        {
            Line("{");
            _indent++;
        }

        public void Close(string suffix = "")
        {
            _indent--;
            Line("}" + suffix);
        }

        public override string ToString() => _text.ToString();
    }
}
