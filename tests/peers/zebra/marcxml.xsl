<?xml version="1.0" encoding="UTF-8"?>
<!-- Retrieval as stored (MARCXML), serialized as UTF-8: without this step Zebra's DOM
     filter writes non-ASCII characters as character references (&#x4E2D;). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>
  <xsl:template match="/">
    <xsl:copy-of select="."/>
  </xsl:template>
</xsl:stylesheet>
