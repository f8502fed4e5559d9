/**
 * A tiny skills model directory (`kiln skills build`, src/skills/model.ts) for tests: the tiny
 * random two-tower export of ./exported-model.ts, and a temporary data root holding a small real
 * subset of the taxonomy, so that the build takes a second instead of embedding all 13,896 ESCO
 * skills.
 *
 * The data root (test/data/root.ts `tempRoot`):
 *
 *   esco-v1.1.1/skills_en.csv                    the real header and 31 real rows of ESCO v1.1.1
 *                                                (copied byte for byte, CRLF record ends, newlines
 *                                                inside quoted cells): programming languages,
 *                                                query languages and databases, project
 *                                                management, and three unrelated skills
 *   esco-v1.1.1/broaderRelationsSkillPillar.csv  the real header and every real row whose two ends
 *   esco-v1.1.1/skillSkillRelations.csv          are both in the subset (19 broader, 12 related)
 *   stackoverflow-tags/TagSynonyms.csv           the real header and a few real rows: js →
 *                                                javascript, py → python, postgres → postgresql,
 *                                                cpp → c++, sql-query → sql, and windows-forms →
 *                                                winforms (which names no ESCO skill)
 *
 * The graph edges a test can rely on (`FIXTURE_EDGES`): Python → broader "computer programming";
 * JavaScript → broader "computer programming" and "web programming"; SQL → broader "query
 * languages"; "computer programming" → broader "digital content creation"; "use scripting
 * programming" optionally related to Python, JavaScript, Ruby and "computer programming".
 *
 * ESCO v1.1.1: European Commission, CC BY 4.0 ("This service uses the ESCO classification of the
 * European Commission."). Stack Overflow tag synonyms: Stack Exchange data dump, CC BY-SA 4.0.
 *
 * @example
 * const { dir } = await tinySkillsModel();
 * const tagger = await SkillTagger.load(dir, { threads: 1 });
 * (await tagger.extract([{ id: 'a', text: 'Requirements:\n- Python and JS' }], { expand: true }))[0]!.skills.map((s) => s.label);
 * // ['JavaScript', 'Python (computer programming)', 'computer programming', …]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createContext } from '../../src/data/files.js';
import { buildSkillsModel } from '../../src/skills/model.js';
import { tempRoot } from '../data/root.js';
import { exportedTinyModels } from './exported-model.js';

// --- the data: records copied from the files under $KILN_DATA, as JSON string literals -----------

const SKILLS_HEADER = "conceptType,conceptUri,skillType,reuseLevel,preferredLabel,altLabels,hiddenLabels,status,modifiedDate,scopeNote,definition,inScheme,description";
const SKILL_ROWS: readonly string[] = [
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/000f1d3d-220f-4789-9c0a-cc742521fb02,knowledge,sector-specific,Haskell,Haskell,,released,2022-07-05T14:34:33.959Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in Haskell.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/0a9acb6b-1139-4be9-b431-3a80a959f2f4,knowledge,sector-specific,Agile project management,Agile project management,,released,2022-07-05T14:38:14.9Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"The agile project management approach is a methodology for planning, managing and overseeing of ICT resources in order to meet specific goals and using project management ICT tools.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/0ccdfe98-f845-4598-84a1-3dca66e9d9a3,knowledge,sector-specific,Ruby (computer programming),\"Ruby-gnome2\nRuby lang\nRuby\nRuby prog\",,released,2022-07-05T14:34:21.232Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in Ruby.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/19a8293b-8e95-4de3-983f-77484079c389,knowledge,sector-specific,Java (computer programming),\"Java Posse\nJavax\nJava\",,released,2022-07-05T14:34:21.232Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in Java.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/1fcce318-3212-487a-ac07-4941bc85060d,skill/competence,cross-sector,carry out project activities,,,released,2020-12-07T17:03:35.013Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",Carry out project activities based on the project work plan and schedule. Assist in the development and execution of project plans.",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21c5790c-0930-4d74-b3b0-84caf5af12ea,skill/competence,cross-sector,manage budgets,manage budgets,,released,2016-10-20T15:06:39Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"Plan, monitor and report on the budget.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97,knowledge,cross-sector,computer programming,\"DIBOL\nSeed7\nVisual Basic .NET\nHyperTalk\nKorn-shell\nEmacs Lisp\nKnockoutJS\ncomputer programming\nSquirrel-script\nTACL\ncT\nObject Pascal\nVisual Basic\nCaml\nAspectJ\nPostScript\nOCaml\nCeylon\nDylan\nbash\nOpenCV\nGosu\nColdFusion\nMSVC++\nC shell\nIDL\nALGOL\nSubversion\nAda\noccam\nIo\nREXX\nZ shell\nBizTalk\nAppleScript\nBCPL\nX10\nGCC\nActionScript\nINTERCAL\nLabVIEW\nHack\nFantom\nTcl\nSTL\nFortran\nPL/I\nCOMAL\nRebol\nEuphoria\nLua\nPowerShell\nAngularJS\nCurl\nAWK\nTuring\",\"C shell\nAda\nSeed7\nAWK\nIo\nPostScript\nAngularJS\nHack\nGosu\nBizTalk\nSTL\nBCPL\nREXX\nAppleScript\nMSVC++\nColdFusion\nbash\nTACL\nINTERCAL\nOpenCV\nEuphoria\nVisual Basic\nRebol\nVisual Basic .NET\nCurl\nGCC\nLabVIEW\nIDL\nPL/I\nDIBOL\nObject Pascal\nX10\nALGOL\nKnockoutJS\nActionScript\nPowerShell\nZ shell\nCOMAL\nSquirrel-script\nTcl\nLua\nHyperTalk\nFantom\nKorn-shell\nCeylon\nFortran\nEmacs Lisp\nTuring\nAspectJ\nOCaml\nDylan\nSubversion\nCaml\ncT\noccam\",released,2022-07-05T14:34:33.959Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/digcomp,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms (e.g. object oriented programming, functional programming) and of programming languages.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/28cb374e-6261-4133-8371-f9a5470145da,skill/competence,cross-sector,operate forklift,\"use a forklift\ndrive forklift\noperate forklift\ndrive a forklift\noperate a forklift\nrun a forklift\",,released,2016-12-20T19:04:22Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"Operate a forklift, a vehicle with a pronged device in front for lifting and carrying heavy loads.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/3c76296d-4bbd-44ba-8eaa-95bf275f79b7,skill/competence,sector-specific,manage ICT project,manage ICT project,,released,2016-08-04T12:24:34Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"Plan, organize, control and document procedures and resources, such as human capital, equipment and mastery, in order to achieve specific goals and objectives related to ICT systems, services or products, within specific constraints, such as scope, time, quality and budget.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/3cd569a2-4f88-4c1e-9995-8dce8c5e51a7,knowledge,sector-specific,JavaScript,\"Client-side JavaScript\nMocha\nEscript\nJavaScript 1.7\nLive script\nCSJS\nJavaScript 1.6\nJavaScripts\nJavaScript\nServer-side JavaScript\nJava script\nLive-script\nLive Script\nLive-Script\nJavascript\",\"Live-Script\nLive-script\nJava script\nJavaScript\nJavascript\",released,2022-07-05T14:34:21.232Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in JavaScript.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/401eb8d8-6daa-4f8b-90ad-60afc71eb4f8,knowledge,sector-specific,Perl,\"Practical Extraction and Report Language\nPERL\nPerl\nPONIE\nPerl Camel\nPonie\nPerl golf\",\"PONIE\nPractical Extraction and Report Language\",released,2022-07-05T14:34:33.959Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in Perl.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/4350c38d-0fe9-4ca7-bab9-40ed7f72b04f,knowledge,sector-specific,PHP,\"Php5\nPhp2\nPHP5-FPM\nPhp 5.0\nPhtml\nPhp 4\nPhp 5.3\nElePHPant\nPHP7\nphp\nPhp6\nPHP\nPhp3\nPhp 5.1\nPhp 5.4\nPhp1\nPHP-FPM\nPHTML\nPhp 5.2\nPhp 6.0\",\"php\nPHTML\",released,2022-07-05T14:34:33.959Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in PHP.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/4da171e5-779c-4983-a76f-91c16751e99f,knowledge,sector-specific,MySQL,\"MySQL Enterprise Edition\nMySQL Embedded (OEM/ISV)\nMySQL Classic Edition\nMySQL Standard Edition\nMySQL\nMySQL Cluster CGE\",,released,2022-07-05T14:33:28.658Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"The computer program MySQL is a tool for creating, updating and managing databases, currently developed by the software company Oracle.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/598de5b0-5b58-4ea7-8058-a4bc4d18c742,knowledge,sector-specific,SQL,\"Informix 4GL/SQL\nSEQUEL\nSQL\nSubquery\",,released,2022-07-05T14:34:46.63Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",The computer language SQL is a query language for retrieval of information from a database and of documents containing the needed information. It is developed by the American National Standards Institute and the International Organization for Standardization.",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/5b9cde20-f1b9-4adc-bfb3-dbf70b14138d,skill/competence,sector-specific,use object-oriented programming,use object-oriented programming,,released,2022-07-05T14:34:46.63Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"Utilise specialised ICT tools for programming paradigm based on the concept of objects, which can contain data in the form of fields and code in the form of procedures. Use programming languages which support this method such as JAVA and C++.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/5da8018b-ae85-4cde-ad93-0394369018f3,knowledge,sector-specific,SPARQL,\"SPARQL\nSPARQL Protocol and RDF Query Language\",,released,2022-07-05T14:34:21.232Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",The computer language SPARQL is a query language for retrieval of information from a database and of documents containing the needed information. It is developed by the international standards organisation World Wide Web Consortium.",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/5ef0c719-5bcb-49f8-b8eb-824388225333,skill/competence,sector-specific,use scripting programming,use scripting programming,,released,2022-07-05T14:34:09.904Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"Utilise specialised ICT tools to create computer code that is interpreted by the corresponding run-time environments in order to extend applications and automate common computer operations. Use programming languages which support this method such as Unix Shell scripts, JavaScript, Python and Ruby.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/69bbd53f-fbb0-4476-b4b2-ef7844464e28,knowledge,sector-specific,web programming,\"web programming\nmarkup programming\",,released,2022-07-05T14:34:46.63Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The programming paradigm that is based on combining markup (which adds context and structure to text) and other web programming code, such as AJAX, javascript and PHP, in order to carry out appropriate actions and visualise the content.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/7111b95d-0ce3-441a-9d92-4c75d05c4388,knowledge,sector-specific,project management,\"programme management\nfundamentals of programme management\nmanagement of programmes\nproject management\nprinciples of programme management\nprinciples of project management\nfundamentals of project management\nproject management activities\nmanaging of programmes\nmanaging of projects\nprogramme management activities\nmanagement of projects\",,released,2016-12-20T21:10:18Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills\",\"Understand project management and the activities which comprise this area. Know the variables implied in project management such as time, resources, requirements, deadlines, and responding to unexpected events.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/71a6ac5f-f220-4bdc-95b7-b1b2e640fec5,skill/competence,sector-specific,teach mathematics,\"provide instruction on mathematics\nteaching mathematics\nteach mathematics\nexplain mathematics\nteaches mathematics\neducate on mathematics\",,released,2016-12-20T18:30:12Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"Instruct students in the theory and practice of quantities, structures, shapes, patterns, and geometry.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/867137fb-ff1b-4ca3-99f3-cb6969aa2c68,knowledge,sector-specific,TypeScript,TypeScript,,released,2022-07-05T14:34:21.232Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in TypeScript.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/94dd823c-148e-4614-a6e8-99249b16357d,knowledge,sector-specific,ICT project management,ICT project management,,released,2022-07-05T14:38:14.433Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"The methodologies for the planning, implementation, review and follow-up of ICT projects, such as the development, integration, modification and sales of ICT products and services, as well as projects relating technological innovation in the field of ICT.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/9cf681c7-89ec-470c-b651-7fe03786f586,knowledge,sector-specific,query languages,\"HTSQL\nGellish\nConcept-Oriented\nRDQL\nSuprTool\nISBL\nXSPARQL\nDMX\nReQL\nF-logic\nSPL\nPoliqarp\nquery languages\nQUEL\nFQL\nXPath\n.QL\nOttoQL,\nCQLF\nDatalog\nOPath,\nOQL\nOCL\nTMQL\nYQL\nMQL\",\"MQL\nPoliqarp\nHTSQL\nSPL\nCQLF\nOttoQL,\nYQL\nDatalog\nReQL\nSuprTool\nXPath\nQUEL\nF-logic\nOPath,\nDMX\nXSPARQL\nTMQL\nOQL\nConcept-Oriented\nGellish\nOCL\n.QL\nFQL\nISBL\nRDQL\",released,2022-07-05T14:37:18.921Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills\",The field of standardised computer languages for retrieval of information from a database and of documents containing the needed information.",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/a8d07b5a-c1a1-42c6-9d53-db9c7a2ca996,knowledge,sector-specific,PostgreSQL,\"Postgres\nPostgreSQL\",,released,2022-07-05T14:33:28.658Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The computer program PostgreSQL is a free and open-source software tool for creating, updating and managing databases, developed by the PostgreSQL Global Development Group.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/ab1e97ed-2319-4293-a8b7-072d2648822f,knowledge,sector-specific,database management systems,\"Jasmine ii\nDb.star\nAdaptive Server Enterprise\nModel 204\nInformix Extended Parallel Server\nUniSQL\nDb.linux\nPervasive.SQL 2000\nDBMS\nOracle Lite\nObjectivity DB\nInterbase\nPointBase Network Server\nQuadbase SQL Server\nYARD-SQL\nPOET Object Server Suite\nVersant\nNonStop SQL\nOracle 8I\nAdabas D\nAdabas\nIMS DB\nUniData\nPointBase Mobile\nDB engines\nInformix Dynamic Server 2000\nTimesTen\nDatacom\nSUPRA\nRdb\nIDMS\nCloudscape\nVelocis\nPervasive.SQL Workgroup\nAdaptive Server Anywhere\nSQLBase\nRaima Database Manager\nDB2 Everyplace\nAdvantage Database Server\ndatabase management systems\nPointBase Embedded\nSQL\nIngres ii\ndatabase systems\nR:Base\",\"Oracle Lite\nIMS DB\nQuadbase SQL Server\nModel 204\nYARD-SQL\nJasmine ii\nPervasive.SQL Workgroup\nR:Base\nPOET Object Server Suite\nSUPRA\nInformix Extended Parallel Server\nAdvantage Database Server\nIngres ii\nIDMS\nInformix Dynamic Server 2000\nDatacom\nPointBase Mobile\nPointBase Network Server\nRdb\nUniData\nDb.linux\nInterbase\nPointBase Embedded\nCloudscape\nDb.star\nVersant\nOracle 8I\nTimesTen\nDB2 Everyplace\nNonStop SQL\nAdabas\nSQLBase\nUniSQL\nAdabas D\nObjectivity DB\nAdaptive Server Anywhere\nAdaptive Server Enterprise\nRaima Database Manager\nVelocis\nPervasive.SQL 2000\",released,2022-07-05T14:33:44.716Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"The tools for creating, updating and managing databases, such as Oracle, MySQL and Microsoft SQL Server.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/b633eb55-8f1f-4ae6-ab4c-2022ffe2cb7f,knowledge,sector-specific,C++,C++,,released,2022-07-05T14:34:33.959Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in C++.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/c881ddd2-9c0e-4743-bd24-36be650493dd,skill/competence,cross-sector,manage several projects,\"manage projects\nmanage several projects\nmaintain several projects\nhandle several projects\noversee several projects\nmanaging several projects\",,released,2016-12-20T18:10:03Z,,,\"http://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/skills\",Oversee and direct the development of several projects running independently. Ensure coherence and leveraging forces among projects in order to secure an overall success and profitability.",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/ccd0a1d9-afda-43d9-b901-96344886e14d,knowledge,sector-specific,Python (computer programming),\"Python3\nPyston\nPy3K\nPython2\nPython prog\nPython 3K\nPython3000\nPython\nPython 3k\",Python 3K,released,2022-07-05T14:34:21.232Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in Python.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/cd5efa8c-e44d-4cbc-91c6-796018dbed68,skill/competence,cross-sector,perform project management,\"perform project management\nperform management of projects\ndo project management\nconduct project management\nmanage projects\nperform projects management\nperforming project management\",,released,2022-01-12T19:57:07.369Z,,,\"http://data.europa.eu/esco/concept-scheme/research,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"Manage and plan various resources, such as human resources, budget, deadline, results, and quality necessary for a specific project, and monitor the project's progress in order to achieve a specific goal within a set time and budget.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/f5369f2f-e52b-43d8-8d31-79a6c11188d8,,,digital content creation,\"content created by ICT software\nICT software content-creation\ncontent creation with ICT software\ndigital content creation\ncontent-creation with ICT program\ncontent-creation with ICT softwares\",,released,2022-07-14T12:54:25.78Z,,,\"http://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills,\nhttp://data.europa.eu/esco/concept-scheme/digcomp\",\"Create and edit new content (from word processing to images and video); integrate and re-elaborate previous knowledge and content; produce creative expressions, media outputs and programming; deal with and apply intellectual property rights and licences.\"",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/ffddfc7c-a9dd-449f-9e96-882dc447c8b6,knowledge,sector-specific,Scala,Scala,,released,2022-07-05T14:34:46.63Z,,,\"http://data.europa.eu/esco/concept-scheme/6c930acd-c104-4ece-acf7-f44fd7333036,\nhttp://data.europa.eu/esco/concept-scheme/skills,\nhttp://data.europa.eu/esco/concept-scheme/member-skills\",\"The techniques and principles of software development, such as analysis, algorithms, coding, testing and compiling of programming paradigms in Scala.\"",
];
const BROADER_HEADER = "conceptType,conceptUri,broaderType,broaderUri";
const BROADER_ROWS: readonly string[] = [
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/000f1d3d-220f-4789-9c0a-cc742521fb02,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/0ccdfe98-f845-4598-84a1-3dca66e9d9a3,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/19a8293b-8e95-4de3-983f-77484079c389,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/1fcce318-3212-487a-ac07-4941bc85060d,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/cd5efa8c-e44d-4cbc-91c6-796018dbed68",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/f5369f2f-e52b-43d8-8d31-79a6c11188d8",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/3c76296d-4bbd-44ba-8eaa-95bf275f79b7,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/cd5efa8c-e44d-4cbc-91c6-796018dbed68",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/3cd569a2-4f88-4c1e-9995-8dce8c5e51a7,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/3cd569a2-4f88-4c1e-9995-8dce8c5e51a7,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/69bbd53f-fbb0-4476-b4b2-ef7844464e28",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/401eb8d8-6daa-4f8b-90ad-60afc71eb4f8,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/4350c38d-0fe9-4ca7-bab9-40ed7f72b04f,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/4350c38d-0fe9-4ca7-bab9-40ed7f72b04f,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/69bbd53f-fbb0-4476-b4b2-ef7844464e28",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/4da171e5-779c-4983-a76f-91c16751e99f,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/ab1e97ed-2319-4293-a8b7-072d2648822f",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/598de5b0-5b58-4ea7-8058-a4bc4d18c742,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/9cf681c7-89ec-470c-b651-7fe03786f586",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/5da8018b-ae85-4cde-ad93-0394369018f3,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/9cf681c7-89ec-470c-b651-7fe03786f586",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/69bbd53f-fbb0-4476-b4b2-ef7844464e28,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/867137fb-ff1b-4ca3-99f3-cb6969aa2c68,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/a8d07b5a-c1a1-42c6-9d53-db9c7a2ca996,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/ab1e97ed-2319-4293-a8b7-072d2648822f",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/b633eb55-8f1f-4ae6-ab4c-2022ffe2cb7f,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/ccd0a1d9-afda-43d9-b901-96344886e14d,KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
];
const RELATED_HEADER = "originalSkillUri,originalSkillType,relationType,relatedSkillType,relatedSkillUri";
const RELATED_ROWS: readonly string[] = [
  "http://data.europa.eu/esco/skill/1fcce318-3212-487a-ac07-4941bc85060d,knowledge,essential,knowledge,http://data.europa.eu/esco/skill/7111b95d-0ce3-441a-9d92-4c75d05c4388",
  "http://data.europa.eu/esco/skill/3c76296d-4bbd-44ba-8eaa-95bf275f79b7,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/7111b95d-0ce3-441a-9d92-4c75d05c4388",
  "http://data.europa.eu/esco/skill/3c76296d-4bbd-44ba-8eaa-95bf275f79b7,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/94dd823c-148e-4614-a6e8-99249b16357d",
  "http://data.europa.eu/esco/skill/5b9cde20-f1b9-4adc-bfb3-dbf70b14138d,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/19a8293b-8e95-4de3-983f-77484079c389",
  "http://data.europa.eu/esco/skill/5b9cde20-f1b9-4adc-bfb3-dbf70b14138d,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "http://data.europa.eu/esco/skill/5b9cde20-f1b9-4adc-bfb3-dbf70b14138d,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/b633eb55-8f1f-4ae6-ab4c-2022ffe2cb7f",
  "http://data.europa.eu/esco/skill/5ef0c719-5bcb-49f8-b8eb-824388225333,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/0ccdfe98-f845-4598-84a1-3dca66e9d9a3",
  "http://data.europa.eu/esco/skill/5ef0c719-5bcb-49f8-b8eb-824388225333,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/21d2f96d-35f7-4e3f-9745-c533d2dd6e97",
  "http://data.europa.eu/esco/skill/5ef0c719-5bcb-49f8-b8eb-824388225333,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/3cd569a2-4f88-4c1e-9995-8dce8c5e51a7",
  "http://data.europa.eu/esco/skill/5ef0c719-5bcb-49f8-b8eb-824388225333,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/ccd0a1d9-afda-43d9-b901-96344886e14d",
  "http://data.europa.eu/esco/skill/c881ddd2-9c0e-4743-bd24-36be650493dd,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/7111b95d-0ce3-441a-9d92-4c75d05c4388",
  "http://data.europa.eu/esco/skill/cd5efa8c-e44d-4cbc-91c6-796018dbed68,knowledge,optional,knowledge,http://data.europa.eu/esco/skill/7111b95d-0ce3-441a-9d92-4c75d05c4388",
];

const TAG_SYNONYMS = [
  'Id,SourceTagName,TargetTagName,CreationDate,OwnerUserId,AutoRenameCount,LastAutoRename,Score,ApprovedByUserId,ApprovalDate',
  '"3","windows-forms","winforms","2010-07-14 06:34:55","23354","673","2021-08-21 15:52:20","0","23354","2010-07-14 06:34:55"',
  '"14","js","javascript","2010-07-16 00:07:56","13531","47177","2021-08-29 21:34:25","0","13531","2010-07-16 00:07:56"',
  '"29","postgres","postgresql","2010-07-16 00:37:27","17174","7833","2021-08-29 20:49:08","0","17174","2010-07-16 00:37:27"',
  '"2534","sql-query","sql","2011-01-26 10:23:18","79061","379","2021-08-26 15:57:53","4","-1","2011-01-27 19:10:49"',
  '"2549","cpp","c++","2011-02-08 09:23:06","135549","5580","2021-08-29 15:57:03","4","-1","2011-02-10 06:29:24"',
  '"6697","py","python","2018-08-14 12:37:21","7908770","464","2021-08-25 16:33:44","4","-1","2018-08-20 18:28:34"',
];

// --- the builder ---------------------------------------------------------------------------------

/** How many skills the fixture's taxonomy has. */
export const FIXTURE_SKILLS = 31;
/** Preferred labels of three of its skills and of their broader skills, which expansion adds (see the header). */
export const FIXTURE_EDGES = {
  python: { label: 'Python (computer programming)', broader: ['computer programming'] },
  javascript: { label: 'JavaScript', broader: ['computer programming', 'web programming'] },
  sql: { label: 'SQL', broader: ['query languages'] },
} as const;

const csv = (lines: readonly string[]): string => `${lines.join('\r\n')}\r\n`;

/** A fresh data root holding the fixture's ESCO subset and Stack Overflow synonyms. */
export function tinySkillsDataRoot(): string {
  return tempRoot({
    'esco-v1.1.1/skills_en.csv': csv([SKILLS_HEADER, ...SKILL_ROWS]),
    'esco-v1.1.1/broaderRelationsSkillPillar.csv': csv([BROADER_HEADER, ...BROADER_ROWS]),
    'esco-v1.1.1/skillSkillRelations.csv': csv([RELATED_HEADER, ...RELATED_ROWS]),
    'stackoverflow-tags/TagSynonyms.csv': csv(TAG_SYNONYMS),
  });
}

let cached: Promise<{ dir: string; dataRoot: string }> | undefined;

/**
 * A skills model directory built from the tiny two-tower export (`exportedTinyModels().twoTower`,
 * whose model id it records) over the fixture's data root; built once per test file and shared,
 * so treat it as read-only (copy it to change it).
 */
export function tinySkillsModel(): Promise<{ dir: string; dataRoot: string }> {
  cached ??= (async () => {
    const { twoTower } = await exportedTinyModels();
    const dataRoot = tinySkillsDataRoot();
    const dir = join(mkdtempSync(join(tmpdir(), 'kiln-skills-')), 'skills');
    await buildSkillsModel({ model: twoTower, out: dir, ctx: createContext({ dataRoot, onBadRow: 'fail' }), threads: 1, log: () => undefined });
    return { dir, dataRoot };
  })();
  cached.catch(() => (cached = undefined));
  return cached;
}
