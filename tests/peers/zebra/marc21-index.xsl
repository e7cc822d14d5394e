<?xml version="1.0" encoding="UTF-8"?>
<!-- MARC21 (MARCXML) to Zebra's indexing format, for the balis test peer.
     1=30, 1=53, 1=1017 and 1=1035 reach the same indexes as 1=31, 1=16 and 1=1016
     through the aliases of the generated bib1.att (see ../servers.py).

     Bib-1 use attribute       index name            MARC21 source (880s count as their $6 tag)
     1=1016 any (1017, 1035)   Any                   every subfield of every data field but $0-$9
     1=4    title              Title                 245 abnp, 246 ab, 130/240/730/740 a
     1=5    series             Title-series          440/490/830 a
     1=1003 author             Author                100/700 abcdq, 110/111/710/711 abcdn
     1=1004, 1=1005            Author-name-personal, Author-name-corporate (same fields)
     1=21   subject            Subject-heading       600-655 abcdtvxyz
     1=7    isbn               ISBN                  020 a (first word), also as ISBN-13/-10
     1=8    issn               ISSN                  022 a
     1=1018 publisher          Publisher             260/264 b
     1=59   place              Place-publication     260/264 a
     1=31   year (and 1=30)    Date-of-publication   008/07-10, else digits of 260/264 c
     1=16   call no. (1=53)    LC-call-number        050/090/099 ab, 852 hi, Alma AVA d
     1=20   classification     Local-classification  050 a, 082 a, 084 a
     1=54   language           Code-language         008/35-37, 041 a
     1=12   record id          Local-number          001
-->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:m="http://www.loc.gov/MARC21/slim"
                xmlns:z="http://indexdata.com/zebra-2.0"
                exclude-result-prefixes="m">
  <xsl:include href="common.xsl"/>
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>

  <xsl:template match="text()"/>

  <xsl:template match="/">
    <xsl:apply-templates select="m:record | m:collection/m:record"/>
  </xsl:template>

  <xsl:template match="m:record">
    <z:record type="update">
      <xsl:call-template name="local-number"/>
      <xsl:variable name="f008" select="m:controlfield[@tag = '008']"/>
      <xsl:variable name="y008" select="substring($f008, 8, 4)"/>
      <xsl:variable name="ok008">
        <xsl:call-template name="is-year"><xsl:with-param name="value" select="$y008"/></xsl:call-template>
      </xsl:variable>
      <xsl:variable name="y260">
        <xsl:call-template name="digits4">
          <xsl:with-param name="value" select="(m:datafield[@tag = '260' or @tag = '264']/m:subfield[@code = 'c'])[1]"/>
        </xsl:call-template>
      </xsl:variable>
      <xsl:choose>
        <xsl:when test="$ok008 = 'yes'">
          <xsl:call-template name="year"><xsl:with-param name="value" select="$y008"/></xsl:call-template>
        </xsl:when>
        <xsl:when test="$y260 != ''">
          <xsl:call-template name="year"><xsl:with-param name="value" select="$y260"/></xsl:call-template>
        </xsl:when>
      </xsl:choose>
      <xsl:call-template name="emit">
        <xsl:with-param name="names" select="'Code-language:w'"/>
        <xsl:with-param name="value" select="substring($f008, 36, 3)"/>
      </xsl:call-template>
      <xsl:apply-templates select="m:datafield"/>
    </z:record>
  </xsl:template>

  <xsl:template match="m:datafield">
    <xsl:variable name="tag">
      <xsl:choose>
        <xsl:when test="@tag = '880'"><xsl:value-of select="substring(m:subfield[@code = '6'], 1, 3)"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="@tag"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:call-template name="any"/>
    <xsl:choose>
      <xsl:when test="$tag = '245'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:w'"/>
          <xsl:with-param name="codes" select="'abnp'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:p Title:s'"/>
          <xsl:with-param name="codes" select="'abnp'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '246'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:w Title:p'"/>
          <xsl:with-param name="codes" select="'ab'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '130' or $tag = '240' or $tag = '730' or $tag = '740'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:w Title:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '440' or $tag = '490' or $tag = '830'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title-series:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '100' or $tag = '700'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:w Author-name-personal:w'"/>
          <xsl:with-param name="codes" select="'abcdq'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '110' or $tag = '710' or $tag = '111' or $tag = '711'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:w Author-name-corporate:w'"/>
          <xsl:with-param name="codes" select="'abcdn'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:p'"/>
          <xsl:with-param name="codes" select="'ab'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="starts-with($tag, '6') and $tag &lt;= '655'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Subject-heading:w'"/>
          <xsl:with-param name="codes" select="'abcdtvxyz'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Subject-heading:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '020'">
        <xsl:call-template name="isbn">
          <xsl:with-param name="value" select="m:subfield[@code = 'a']"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '022'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'ISSN:w Identifier-standard:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '260' or $tag = '264'">
        <xsl:for-each select="m:subfield[@code = 'b']">
          <xsl:call-template name="emit">
            <xsl:with-param name="names" select="'Publisher:w Publisher:p'"/>
            <xsl:with-param name="value" select="."/>
          </xsl:call-template>
        </xsl:for-each>
        <xsl:for-each select="m:subfield[@code = 'a']">
          <xsl:call-template name="emit">
            <xsl:with-param name="names" select="'Place-publication:w'"/>
            <xsl:with-param name="value" select="."/>
          </xsl:call-template>
        </xsl:for-each>
      </xsl:when>
      <xsl:when test="$tag = '050' or $tag = '090' or $tag = '099'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'LC-call-number:w LC-call-number:p'"/>
          <xsl:with-param name="codes" select="'ab'"/>
        </xsl:call-template>
        <xsl:if test="$tag = '050'">
          <xsl:call-template name="subfields">
            <xsl:with-param name="names" select="'Local-classification:w'"/>
            <xsl:with-param name="codes" select="'a'"/>
          </xsl:call-template>
        </xsl:if>
      </xsl:when>
      <xsl:when test="$tag = '852'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'LC-call-number:w LC-call-number:p'"/>
          <xsl:with-param name="codes" select="'hi'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = 'AVA'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'LC-call-number:w LC-call-number:p'"/>
          <xsl:with-param name="codes" select="'d'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '082' or $tag = '084'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Local-classification:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '041'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Code-language:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
